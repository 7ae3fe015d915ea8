"""app/uninstalled: the shop is marked uninstalled, its tokens dropped, shop_uninstalled sent on commit."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from retention_app.shops import events as shop_events
from retention_app.shops.models import Shop, ShopCredential
from retention_app.shops.services import AccessGrant, shop_credential_store
from tests.fixtures.shopify_payloads import load_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def uninstalled_events():
    received = []

    def receiver(sender, shop, **kwargs):
        received.append(shop.domain)

    shop_events.shop_uninstalled.connect(receiver, dispatch_uid="test-uninstalled")
    yield received
    shop_events.shop_uninstalled.disconnect(dispatch_uid="test-uninstalled")


def _with_token(shop: Shop) -> Shop:
    shop_credential_store(shop=shop, grant=AccessGrant(access_token="shpat_secret", refresh_token="shprt_x"))
    return shop


def _uninstall(webhooks, capture, shop, *, triggered_at=None, webhook_id=None):
    triggered_at = triggered_at or timezone.now().isoformat()
    with capture(execute=True):
        response = webhooks.post(
            "app/uninstalled",
            load_payload("app/uninstalled"),
            shop_domain=shop.domain,
            webhook_id=webhook_id,
            extra={"X-Shopify-Triggered-At": triggered_at},
        )
    assert response.status_code == 200
    return response


def test_uninstall_marks_the_shop_drops_its_tokens_and_notifies(
    shop, other_shop, webhooks, django_capture_on_commit_callbacks, uninstalled_events
):
    _with_token(shop)
    _with_token(other_shop)
    Shop.objects.filter(pk__in=[shop.pk, other_shop.pk]).update(
        installed_at=timezone.now() - dt.timedelta(days=30)
    )

    _uninstall(webhooks, django_capture_on_commit_callbacks, shop)

    shop.refresh_from_db()
    assert shop.status == Shop.Status.UNINSTALLED
    assert shop.uninstalled_at is not None
    assert not ShopCredential.objects.filter(shop=shop).exists()
    assert uninstalled_events == [shop.domain]
    # Tenant isolation: the other merchant keeps everything.
    other_shop.refresh_from_db()
    assert other_shop.status == Shop.Status.INSTALLED
    assert ShopCredential.objects.filter(shop=other_shop).exists()


def test_a_redelivered_uninstall_does_nothing_more(
    shop, webhooks, django_capture_on_commit_callbacks, uninstalled_events
):
    Shop.objects.filter(pk=shop.pk).update(installed_at=timezone.now() - dt.timedelta(days=1))
    _uninstall(webhooks, django_capture_on_commit_callbacks, shop, webhook_id="u-1")
    again = _uninstall(webhooks, django_capture_on_commit_callbacks, shop, webhook_id="u-1")
    assert again.json()["status"] == "duplicate"
    assert uninstalled_events == [shop.domain]


def test_a_late_uninstall_from_before_a_reinstall_is_ignored(
    shop, webhooks, django_capture_on_commit_callbacks, uninstalled_events
):
    _with_token(shop)
    Shop.objects.filter(pk=shop.pk).update(installed_at=timezone.now())
    _uninstall(webhooks, django_capture_on_commit_callbacks, shop, triggered_at="2020-01-01T00:00:00Z")
    shop.refresh_from_db()
    assert shop.status == Shop.Status.INSTALLED
    assert ShopCredential.objects.filter(shop=shop).exists()
    assert uninstalled_events == []
