import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def load_fixture(name: str) -> dict:
    """A real-shaped payload from tests/sync/fixtures/<topic>__<variant>.json."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def payload():
    return load_fixture


@pytest.fixture
def captured_events():
    """Every commerce domain event sent during the test, as (name, kwargs) in order."""
    from retention_app.commerce import events

    seen: list[tuple[str, dict]] = []
    receivers = []
    for name in ("order_upserted", "fulfillment_upserted", "customer_upserted"):
        signal = getattr(events, name)

        def receiver(sender, _name=name, **kwargs):
            kwargs.pop("signal", None)
            seen.append((_name, kwargs))

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    yield seen
    for signal, receiver in receivers:
        signal.disconnect(receiver)
