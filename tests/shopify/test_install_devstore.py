"""End-to-end install against the local dev store over real HTTP: the browser (a requests session) goes
install -> the store's authorize page (auto-approve) -> our callback on a live server; the app exchanges the
code, reads the shop, subscribes the webhooks in the store, stores the tokens encrypted, logs the merchant
in and lands on /app/. Then uninstall in the store and install again: a fresh token, no stale one."""

from __future__ import annotations

import pytest
import requests
from django.db import connection

from retention_app.shops.models import Shop, ShopCredential
from retention_app.shops.services import shop_credentials_drop
from shop_integrations.shopify.client import ShopifyClient
from shop_integrations.shopify.documents import load
from shop_integrations.shopify.oauth import WEBHOOK_TOPICS, access_token_for
from tests.conftest import requires_postgres

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def app_settings(settings, live_server, devstore_settings):
    settings.APP_URL = live_server.url
    return settings


def browser_install(app_url: str, shop: str) -> requests.Response:
    """What a merchant's browser does, hop by hop; returns the app's answer to the callback."""
    browser = requests.Session()
    browser.trust_env = False
    install = browser.get(f"{app_url}/shopify/install", params={"shop": shop}, allow_redirects=False)
    assert install.status_code == 302, install.text
    authorize = browser.get(install.headers["Location"], allow_redirects=False)
    assert authorize.status_code == 302, authorize.text  # auto-approve: straight back to our callback
    callback_url = authorize.headers["Location"]
    assert callback_url.startswith(f"{app_url}/shopify/callback?")
    answer = browser.get(callback_url, allow_redirects=False)
    answer.browser = browser
    answer.callback_url = callback_url
    return answer


def test_install_uninstall_reinstall(app_settings, devstore, devstore_shop):
    control = devstore.control
    # Given a shop in the dev store, when the merchant installs the app
    answer = browser_install(app_settings.APP_URL, devstore_shop)
    # Then the app lands them in the panel
    assert answer.status_code == 302, answer.text
    assert answer.headers["Location"] == "/app/"
    shop = Shop.objects.get(domain=devstore_shop)
    assert shop.status == Shop.Status.INSTALLED
    assert (shop.name, shop.currency, shop.timezone) == ("Test Tea Shop", "USD", "America/New_York")
    # tokens stored encrypted, and they are the store's valid expiring tokens
    credential = ShopCredential.objects.get(shop=shop)
    assert credential.access_token.startswith("shpat_") and credential.refresh_token.startswith("shprt_")
    assert credential.access_token_expires_at is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM shops_shopcredential WHERE id=%s", [credential.pk]
        )
        raw_access, raw_refresh = cursor.fetchone()
    assert credential.access_token not in raw_access and credential.refresh_token not in raw_refresh
    # the store holds our webhook subscriptions, to our endpoint
    subscriptions = control.subscriptions(devstore_shop)
    assert sorted(s["topic"] for s in subscriptions) == sorted(WEBHOOK_TOPICS)
    assert {s["uri"] for s in subscriptions} == {f"{app_settings.APP_URL}/webhooks/shopify"}
    # the token works for API calls
    data = ShopifyClient.for_shop(shop).execute(load("shop"))
    assert data["shop"]["myshopifyDomain"] == devstore_shop
    # the callback URL cannot be replayed
    assert answer.browser.get(answer.callback_url, allow_redirects=False).status_code == 403

    # When the merchant uninstalls in the store (the app/uninstalled handler drops the tokens)
    old_token = credential.access_token
    control.uninstall_app(devstore_shop)
    Shop.objects.filter(pk=shop.pk).update(status=Shop.Status.UNINSTALLED)
    shop_credentials_drop(shop=shop)
    # and installs again
    again = browser_install(app_settings.APP_URL, devstore_shop)
    assert again.status_code == 302 and again.headers["Location"] == "/app/"
    shop.refresh_from_db()
    assert shop.status == Shop.Status.INSTALLED
    fresh = ShopCredential.objects.get(shop=shop)
    assert fresh.access_token != old_token
    assert Shop.objects.filter(domain=devstore_shop).count() == 1
    assert len(control.subscriptions(devstore_shop)) == len(WEBHOOK_TOPICS)
    assert ShopifyClient.for_shop(shop).execute(load("shop"))["shop"]["myshopifyDomain"] == devstore_shop
    # and the old token is dead in the store
    old = control.graphql(devstore_shop, old_token, "query { shop { name } }")
    assert old.status_code == 401


def test_expired_token_is_refreshed_against_the_store(app_settings, devstore, devstore_shop):
    browser_install(app_settings.APP_URL, devstore_shop)
    shop = Shop.objects.get(domain=devstore_shop)
    before = ShopCredential.objects.get(shop=shop)
    # The store expires the access token; the client gets a 401, refreshes once and retries.
    devstore.control.expire_tokens(devstore_shop)
    data = ShopifyClient.for_shop(shop).execute(load("shop"))
    assert data["shop"]["myshopifyDomain"] == devstore_shop
    after = ShopCredential.objects.get(shop=shop)
    assert after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token  # rotated and stored
    assert access_token_for(shop) == after.access_token
    assert devstore.control.stats(devstore_shop)["refreshes"] == 1


def test_concurrent_refresh_reaches_the_store_once(app_settings, devstore, devstore_shop):
    import datetime as dt
    import threading

    from django.utils import timezone

    browser_install(app_settings.APP_URL, devstore_shop)
    shop = Shop.objects.get(domain=devstore_shop)
    # Given a token about to expire, and 6 workers (own DB connections) needing it at once
    ShopCredential.objects.filter(shop=shop).update(
        access_token_expires_at=timezone.now() + dt.timedelta(seconds=30)
    )
    barrier = threading.Barrier(6)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(access_token_for(Shop.objects.get(pk=shop.pk)))
        except Exception as exc:  # noqa: BLE001 (asserted below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then the store saw exactly one refresh, everyone got its token, and the token works
    assert errors == []
    assert devstore.control.stats(devstore_shop)["refreshes"] == 1
    assert len(set(results)) == 1 and len(results) == 6
    assert ShopCredential.objects.get(shop=shop).access_token == results[0]
    assert ShopifyClient.for_shop(shop).execute(load("shop"))["shop"]["myshopifyDomain"] == devstore_shop


REFRESH_WORKER = """
import os, sys, time
import django
django.setup()
from retention_app.shops.models import Shop
from shop_integrations.shopify.oauth import access_token_for
shop = Shop.objects.get(domain=sys.argv[1])
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):  # all workers start together
    time.sleep(0.005)
print("token", access_token_for(shop), flush=True)
"""


@requires_postgres  # the production setting: SELECT ... FOR UPDATE across processes
def test_concurrent_refresh_from_processes_reaches_the_store_once(
    app_settings, devstore, devstore_shop, tmp_path
):
    import datetime as dt
    import os
    import subprocess
    import sys

    from django.utils import timezone

    from tests.fixtures.processes import _database_url

    browser_install(app_settings.APP_URL, devstore_shop)
    shop = Shop.objects.get(domain=devstore_shop)
    ShopCredential.objects.filter(shop=shop).update(
        access_token_expires_at=timezone.now() + dt.timedelta(seconds=30)
    )
    go = tmp_path / "go"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "retention_app.settings",
        "DEBUG": "1",
        "DATABASE_URL": _database_url(),
        "SHOPIFY_STORE_URL_TEMPLATE": devstore.store_url_template,
        "SHOPIFY_DEV_SHOP_SUFFIX": ".devstore.test",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", REFRESH_WORKER, devstore_shop, str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
        go.write_text("go")
        outputs = [worker.communicate(timeout=60) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert all(worker.returncode == 0 for worker in workers), [err[-2000:] for _, err in outputs]
    tokens = [out.strip().split()[-1] for out, _ in outputs]
    assert devstore.control.stats(devstore_shop)["refreshes"] == 1, outputs
    assert len(set(tokens)) == 1
    assert ShopCredential.objects.get(shop=shop).access_token == tokens[0]
