"""Token refresh: before expiry, on a rejected token, refused refreshes, and one refresh at a time per shop
when many workers need the token at once (the store must see exactly one refresh call)."""

import datetime as dt
import json
import threading
import time

import pytest
import responses
from django.db import connection
from django.utils import timezone

from retention_app.shops.models import ShopCredential
from shop_integrations.shopify.http import ShopifyUnauthorizedError
from shop_integrations.shopify.oauth import REFRESH_MARGIN, ShopNotConnected, access_token_for
from tests.shopify.conftest import store_credential  # noqa: F401 (fixture)

TOKEN_URL = "https://acme.myshopify.com/admin/oauth/access_token"


@pytest.fixture(autouse=True)
def _production_like_urls(settings):
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"


def refresh_answer(n):
    return {
        "access_token": f"tok-{n}",
        "expires_in": 3600,
        "refresh_token": f"ref-{n}",
        "refresh_token_expires_in": 7776000,
        "scope": "read_orders",
    }


@pytest.mark.django_db
@responses.activate
def test_fresh_token_is_used_without_calling_the_store(shop, store_credential):  # noqa: F811
    store_credential(shop, access_token="tok-1", expires_in=3600)
    assert access_token_for(shop) == "tok-1"
    assert len(responses.calls) == 0


@pytest.mark.django_db
@responses.activate
def test_token_about_to_expire_is_refreshed_and_refresh_token_rotated(shop, store_credential):  # noqa: F811
    store_credential(shop, access_token="tok-1", refresh_token="ref-1", expires_in=120)  # < 5 min margin
    responses.post(TOKEN_URL, json=refresh_answer(2))
    assert access_token_for(shop) == "tok-2"
    sent = json.loads(responses.calls[0].request.body)
    assert sent == {
        "client_id": "dev-boomerang-client-id",
        "client_secret": "dev-boomerang-client-secret",
        "grant_type": "refresh_token",
        "refresh_token": "ref-1",
    }
    credential = ShopCredential.objects.get(shop=shop)
    assert (credential.access_token, credential.refresh_token) == ("tok-2", "ref-2")
    assert credential.access_token_expires_at - timezone.now() > REFRESH_MARGIN
    assert credential.scopes == "read_orders"


@pytest.mark.django_db
@responses.activate
def test_rejected_token_is_refreshed_only_if_still_the_stored_one(shop, store_credential):  # noqa: F811
    store_credential(shop, access_token="tok-1", refresh_token="ref-1")
    responses.post(TOKEN_URL, json=refresh_answer(2))
    assert access_token_for(shop, rejected_token="tok-1") == "tok-2"
    # A worker that was rejected with the old token just picks up the new one: no second refresh.
    assert access_token_for(shop, rejected_token="tok-1") == "tok-2"
    assert len(responses.calls) == 1


@pytest.mark.django_db
@responses.activate
def test_refused_refresh_is_unauthorized_and_keeps_the_row(shop, store_credential):  # noqa: F811
    store_credential(shop, access_token="tok-1", refresh_token="ref-1", expires_in=0)
    responses.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(ShopifyUnauthorizedError, match="refresh refused"):
        access_token_for(shop)
    assert ShopCredential.objects.get(shop=shop).refresh_token == "ref-1"


@pytest.mark.django_db
def test_expired_refresh_token_needs_reinstall(shop, store_credential):  # noqa: F811
    credential = store_credential(shop, expires_in=0)
    credential.refresh_token_expires_at = timezone.now() - dt.timedelta(seconds=1)
    credential.save()
    with pytest.raises(ShopifyUnauthorizedError, match="reinstall"):
        access_token_for(shop)


@pytest.mark.django_db
def test_shop_without_credential_is_not_connected(shop):
    with pytest.raises(ShopNotConnected):
        access_token_for(shop)


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_concurrent_workers_refresh_once_and_share_the_result(shop, store_credential):  # noqa: F811
    # Given an expired token and 8 workers needing it at the same moment
    store_credential(shop, access_token="tok-1", refresh_token="ref-1", expires_in=0)
    calls = []

    def store_answers(request):
        calls.append(json.loads(request.body)["refresh_token"])
        time.sleep(0.2)  # the store's latency: keeps the first refresh in flight while the others arrive
        return 200, {}, json.dumps(refresh_answer(len(calls) + 1))

    responses.add_callback(responses.POST, TOKEN_URL, callback=store_answers)
    barrier = threading.Barrier(8)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(access_token_for(shop))
        except Exception as exc:  # noqa: BLE001 (collected and asserted below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one refresh reached the store and everyone got its result
    assert errors == []
    assert calls == ["ref-1"]
    assert results == ["tok-2"] * 8
    credential = ShopCredential.objects.get(shop=shop)
    assert (credential.access_token, credential.refresh_token) == ("tok-2", "ref-2")
