"""delivery.Courier over real SMTP (aiosmtpd), with the envelope sent step by step and pipelined (RFC 2920):
a refused recipient is a definite refusal for that message only, a commit point not recorded sends nothing,
and the connections stay usable afterwards."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller
from django.core.mail import EmailMessage

from retention_app.automations import delivery
from tests.fixtures.processes import free_port


class RefusingHandler:
    """Accepts every message, except for recipients starting with "nobody@" (550, permanent) and
    "busy@" (450, temporary)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str]]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd API)
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user"
        if address.startswith("busy@"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


@pytest.fixture
def server(settings):
    handler = RefusingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    yield handler
    controller.stop()


def _email(to: str) -> EmailMessage:
    return EmailMessage("Hello", "Body", "Shop <shop@example.com>", [to])


@pytest.mark.parametrize("pipelining", [False, True], ids=["stepwise", "pipelined"])
def test_a_refused_recipient_fails_its_message_only(server, pipelining):
    courier = delivery.Courier()
    courier.pipelining = pipelining
    emails = [_email("ana@example.com"), _email("nobody@example.com"), _email("busy@example.com"),
              _email("ben@example.com")]  # fmt: skip
    recorded = []

    def commit_points(indexes):
        recorded.extend(indexes)
        return set(indexes)

    results = courier.send_group(emails, commit_points=commit_points)
    assert recorded == [0, 3]  # only the messages the server is ready to take reach their commit point
    assert results[0] is None and results[3] is None
    assert isinstance(results[1], delivery.DeliveryRefused) and results[1].permanent
    assert isinstance(results[2], delivery.DeliveryRefused) and not results[2].permanent
    assert sorted(rcpts[0] for _, rcpts in server.received) == ["ana@example.com", "ben@example.com"]
    # Every connection is still usable (the refused ones were reset, not left mid-transaction).
    again = courier.send_group(
        [_email(f"c{i}@example.com") for i in range(4)], commit_points=lambda indexes: set()
    )
    assert all(isinstance(r, delivery.ClaimLost) for r in again)  # no commit point: nothing sent ...
    again = courier.send_group(
        [_email(f"c{i}@example.com") for i in range(4)], commit_points=lambda indexes: set(indexes)
    )
    assert again == [None] * 4  # ... and sent once it is recorded
    assert len(server.received) == 6
    courier.close()


@pytest.mark.parametrize("pipelining", [False, True], ids=["stepwise", "pipelined"])
def test_a_commit_point_recorded_for_some_sends_only_those(server, pipelining):
    courier = delivery.Courier()
    courier.pipelining = pipelining
    emails = [_email(f"r{i}@example.com") for i in range(3)]
    results = courier.send_group(emails, commit_points=lambda indexes: {i for i in indexes if i != 1})
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], delivery.ClaimLost)
    assert sorted(rcpts[0] for _, rcpts in server.received) == ["r0@example.com", "r2@example.com"]
    courier.close()
