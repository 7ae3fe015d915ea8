"""Helpers for the automation tests: send the commerce domain events exactly as commerce services do."""

from __future__ import annotations

import datetime as dt

import pytest

from retention_app.automations import services
from retention_app.automations.models import Rule
from retention_app.commerce import events


def fire_order(order, *, created=True, times=1):
    for _ in range(times):
        events.order_upserted.send(sender=None, order=order, created=created, was_cancelled=False)
        created = False  # a redelivered webhook updates the same row


def fire_fulfillment(fulfillment, *, created, previous=""):
    events.fulfillment_upserted.send(
        sender=None, fulfillment=fulfillment, created=created, previous_shipment_status=previous
    )


def fire_customer(customer, *, previous):
    events.customer_upserted.send(
        sender=None, customer=customer, created=False, previous_marketing_state=previous
    )


@pytest.fixture(autouse=True)
def fake_discounts(request, monkeypatch):
    """Unit tests have no store to create codes on: issue fake codes (the discounts domain is tested by
    its owner; the end-to-end tests use the dev store). Returns the list of issue calls.
    A module with REAL_BUILDING_BLOCKS = True keeps the real ones."""
    if getattr(request.module, "REAL_BUILDING_BLOCKS", False):
        return []
    from types import SimpleNamespace

    from django.utils import timezone

    from retention_app.automations import integrations

    issued: list[dict] = []

    def issue(**kwargs):
        issued.append(kwargs)
        code = f"TEST-{len(issued)}"
        return SimpleNamespace(
            code=code, expires_at=timezone.now() + dt.timedelta(days=kwargs["expires_in_days"]),
            url=f"https://store.test/discount/{code}",
        )  # fmt: skip

    monkeypatch.setattr(integrations, "discount_code_issue", issue)
    monkeypatch.setattr(integrations, "discount_code_write_order_metafield", lambda **kwargs: None)
    return issued


@pytest.fixture(autouse=True)
def fake_unsubscribe(request, monkeypatch):
    """A stable unsubscribe link for unit tests (the signed link and its view belong to messaging)."""
    if getattr(request.module, "REAL_BUILDING_BLOCKS", False):
        return
    from retention_app.automations import integrations

    def url(customer):
        return f"https://app.test/m/u/{customer.pk}/"

    monkeypatch.setattr(integrations, "unsubscribe_url", url)
    monkeypatch.setattr(
        integrations,
        "unsubscribe_headers",
        lambda c, link=None: {
            "List-Unsubscribe": f"<{link or url(c)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


@pytest.fixture
def rules(shop):
    """The shop's default rules, keyed; limits off so tests opt in to quiet hours and the cap."""
    installed = {r.key: r for r in services.rules_install_defaults(shop=shop)}
    services.shop_settings_update(shop=shop, data={"quiet_hours_enabled": False, "frequency_cap_hours": 0})
    return installed


def only(rules_by_key, *keys):
    """Pause every rule except `keys`."""
    for key, rule in rules_by_key.items():
        rule.enabled = key in keys
        rule.save(update_fields=["enabled"])
    return rules_by_key


def minutes_ago(n):
    from django.utils import timezone

    return timezone.now() - dt.timedelta(minutes=n)


__all__ = ["Rule", "fire_customer", "fire_fulfillment", "fire_order", "minutes_ago", "only"]
