"""End to end: commerce upserts (as webhooks produce them) -> durable schedule -> real Celery worker -> real
SMTP server. Crash cases: the worker killed in the middle of an SMTP transaction, the broker flushed.

Time is controlled through the dispatcher's `now` (the rows' due_at are real timestamps in the database):
an order placed now is not claimed before placed_at + 30 min, and is claimed when the dispatcher runs
"31 minutes later".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import os
import threading
from decimal import Decimal

import pytest
from django.utils import timezone

from retention_app.automations import services
from retention_app.automations.models import Message
from retention_app.commerce.services import order_upsert
from shop_integrations.types import CustomerData, OrderData
from tests.automations.conftest import only
from tests.conftest import requires_redis
from tests.fixtures.processes import free_port, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class GatedSMTPSink:
    """A real aiosmtpd server that can hold every RCPT TO (so a worker can be killed mid-transaction)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self.held = threading.Event()  # set while a RCPT is being held
        self.gate_open = threading.Event()
        self.gate_open.set()
        self._lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
                while not sink.gate_open.is_set():
                    sink.held.set()
                    await asyncio.sleep(0.02)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with sink._lock:
                    sink.messages.append(msg)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def to(self, address: str) -> list:
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]

    def count(self) -> int:
        with self._lock:
            return len(self.messages)


@pytest.fixture
def gated_smtp(settings):
    sink = GatedSMTPSink()
    sink.controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = sink.port
    yield sink
    sink.gate_open.set()
    sink.controller.stop()


@pytest.fixture
def e2e_rules(shop):
    rules = {r.key: r for r in services.rules_install_defaults(shop=shop)}
    services.shop_settings_update(shop=shop, data={"quiet_hours_enabled": False, "frequency_cap_hours": 0})
    return rules


def place_order(
    shop, *, platform_id: str, customer_id: str, email_address: str, placed_at, state="SUBSCRIBED"
):
    """What the orders/create webhook handler does: a normalized upsert (sends order_upserted on commit)."""
    data = OrderData(
        platform_id=platform_id,
        currency="USD",
        total_price=Decimal("42.00"),
        placed_at=placed_at,
        name=f"#{platform_id}",
        email=email_address,
        financial_status="paid",
        platform_updated_at=placed_at,
        customer=CustomerData(
            platform_id=customer_id, email=email_address, first_name="Ana", marketing_state=state
        ),
    )
    return order_upsert(shop=shop, data=data).obj


def statuses(**filters) -> list[str]:
    return sorted(Message.objects.filter(**filters).values_list("status", flat=True))


def test_first_order_gets_one_thank_you_after_the_delay_unsubscribed_gets_none(
    e2e_rules, shop, smtp_server, celery_worker
):
    only(e2e_rules, "thank_you")
    placed = timezone.now()
    # The same orders/create webhook delivered five times.
    for _ in range(5):
        first = place_order(shop, platform_id="1001", customer_id="77", email_address="ana@example.com",
                            placed_at=placed)  # fmt: skip
    second = place_order(shop, platform_id="1002", customer_id="77", email_address="ana@example.com",
                         placed_at=placed + dt.timedelta(minutes=1))  # fmt: skip
    assert Message.objects.count() == 1  # the repeat order schedules no thank-you
    msg = Message.objects.get()
    assert msg.order == first and msg.due_at == placed + dt.timedelta(minutes=30)

    assert services.messages_dispatch(now=placed + dt.timedelta(minutes=29)) == 0
    assert services.messages_dispatch(now=placed + dt.timedelta(minutes=31)) == 1
    wait_until(lambda: statuses() == ["sent"], timeout=60, what="thank-you sent by the worker")
    wait_until(lambda: len(smtp_server.to("ana@example.com")) == 1, timeout=10, what="email at the server")
    received = smtp_server.to("ana@example.com")[0]
    msg.refresh_from_db()
    assert received["Message-ID"] == msg.message_id
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["List-Unsubscribe"]
    assert received.get_body(("html",)) is not None and received.get_body(("plain",)) is not None
    # Dispatching again, redelivering the webhooks: nothing more.
    place_order(shop, platform_id="1001", customer_id="77", email_address="ana@example.com", placed_at=placed)
    assert services.messages_dispatch(now=placed + dt.timedelta(hours=2)) == 0
    assert len(smtp_server.to("ana@example.com")) == 1
    assert not Message.objects.filter(order=second).exists()

    # An unsubscribed customer gets no marketing email (only the transactional confirmation).
    only(e2e_rules, "thank_you", "order_confirmation")
    smtp_server.messages.clear()
    Message.objects.all().delete()
    placed = timezone.now() - dt.timedelta(minutes=31)
    place_order(shop, platform_id="2001", customer_id="78", email_address="no@example.com",
                placed_at=placed, state="UNSUBSCRIBED")  # fmt: skip
    place_order(shop, platform_id="2002", customer_id="79", email_address="yes@example.com", placed_at=placed)
    services.messages_dispatch()
    wait_until(lambda: "scheduled" not in statuses() and "sending" not in statuses(), timeout=60,
               what="all messages handled")  # fmt: skip
    thank_you_no = Message.objects.get(rule__key="thank_you", customer__email="no@example.com")
    assert thank_you_no.status == "cancelled"
    assert thank_you_no.reason == "The customer does not accept email marketing."
    wait_until(lambda: len(smtp_server.messages) == 3, timeout=10, what="three emails")
    to_no = smtp_server.to("no@example.com")
    # Only the (transactional) order confirmation, without unsubscribe headers.
    assert len(to_no) == 1 and to_no[0]["List-Unsubscribe"] is None
    assert len(smtp_server.to("yes@example.com")) == 2


def _schedule_due(shop, rules, n: int) -> list[str]:
    only(rules, "thank_you")
    placed = timezone.now() - dt.timedelta(minutes=31)
    addresses = [f"c{i}@example.com" for i in range(n)]
    for i, address in enumerate(addresses):
        place_order(shop, platform_id=f"30{i:02d}", customer_id=f"9{i:02d}", email_address=address,
                    placed_at=placed)  # fmt: skip
    assert Message.objects.filter(status="scheduled").count() == n
    return addresses


def test_worker_killed_mid_smtp_transaction_loses_and_doubles_nothing(
    e2e_rules, shop, gated_smtp, celery_worker
):
    addresses = _schedule_due(shop, e2e_rules, 3)
    gated_smtp.gate_open.clear()  # the server holds the first RCPT TO
    assert services.messages_dispatch() == 3
    wait_until(gated_smtp.held.is_set, timeout=60, what="worker inside an SMTP transaction")
    celery_worker.stop(kill=True)  # SIGKILL mid-transaction
    gated_smtp.gate_open.set()
    assert statuses() == ["sending"] * 3
    assert not Message.objects.filter(smtp_started_at__isnull=False).exists()  # never reached DATA
    assert gated_smtp.count() == 0

    celery_worker.start()
    # Within the lease nobody touches the claimed rows; after it the dispatcher reclaims them.
    assert services.messages_dispatch() == 0
    later = timezone.now() + dt.timedelta(seconds=services.CLAIM_LEASE_SECONDS + 1)
    assert services.messages_dispatch(now=later) == 3
    wait_until(lambda: statuses() == ["sent"] * 3, timeout=60, what="all three sent after the restart")
    wait_until(lambda: gated_smtp.count() == 3, timeout=10, what="three emails")
    assert all(len(gated_smtp.to(a)) == 1 for a in addresses)
    assert set(Message.objects.values_list("attempts", flat=True)) == {2}


@requires_redis
def test_broker_flushed_loses_nothing(e2e_rules, shop, smtp_server, celery_worker):
    import redis

    addresses = _schedule_due(shop, e2e_rules, 4)
    celery_worker.stop()
    assert services.messages_dispatch() == 4  # send tasks published...
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()  # ...and lost with the broker's data
    celery_worker.start()
    assert statuses() == ["sending"] * 4
    later = timezone.now() + dt.timedelta(seconds=services.CLAIM_LEASE_SECONDS + 1)
    assert services.messages_dispatch(now=later) == 4
    wait_until(lambda: statuses() == ["sent"] * 4, timeout=60, what="all four sent")
    wait_until(lambda: len(smtp_server.messages) == 4, timeout=10, what="four emails")
    assert all(len(smtp_server.to(a)) == 1 for a in addresses)
