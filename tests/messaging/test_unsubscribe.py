"""Unsubscribe: signed links, RFC 8058 headers, the page and one-click POST, write-back to the store."""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import Client

from retention_app.commerce.models import Customer
from retention_app.messaging.models import ConsentChange
from retention_app.messaging.services import consent_change_write_back, consent_changes_requeue_unsynced
from retention_app.messaging.unsubscribe import (
    SALT,
    unsubscribe_headers,
    unsubscribe_token,
    unsubscribe_token_read,
    unsubscribe_url,
)
from tests.factories import CustomerFactory


@pytest.fixture
def client():
    # enforce_csrf_checks: the one-click POST must work without a CSRF token, as mail clients send it.
    return Client(enforce_csrf_checks=True)


def path_of(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[1].join(["/", ""])


def test_url_and_headers(shop, settings):
    settings.APP_URL = "https://boomerang.example"
    customer = CustomerFactory(shop=shop)
    url = unsubscribe_url(customer)
    assert url.startswith("https://boomerang.example/m/u/") and url.endswith("/")
    assert unsubscribe_url(customer) == url  # stable: the same link in every email
    headers = unsubscribe_headers(customer)
    assert headers == {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@boomerang.example"
    assert unsubscribe_headers(customer)["List-Unsubscribe"] == (
        f"<{url}>, <mailto:unsubscribe@boomerang.example?subject=unsubscribe>"
    )


def test_get_shows_a_localized_confirm_page_and_changes_nothing(shop, client):
    customer = CustomerFactory(shop=shop, locale="pl-PL")
    response = client.get(path_of(unsubscribe_url(customer)))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Czy chcesz przestać otrzymywać wiadomości marketingowe od sklepu Acme Tea?" in body
    assert '<form method="post">' in body
    assert response["Cache-Control"] == "no-store"
    customer.refresh_from_db()
    assert customer.marketing_state == Customer.MarketingState.SUBSCRIBED


@pytest.mark.parametrize(
    "locale,words",
    [("th", "ยกเลิกการรับอีเมลจาก"), ("zh-TW", "取消訂閱"), ("vi", "Hủy đăng ký"), ("en", "Unsubscribe")],
)
def test_page_language_follows_the_customer(shop, client, locale, words):
    customer = CustomerFactory(shop=shop, locale=locale)
    assert words in client.get(path_of(unsubscribe_url(customer))).content.decode()


def test_one_click_post_unsubscribes_at_once_and_writes_back(
    shop, client, fake_shopify, monkeypatch, django_capture_on_commit_callbacks
):
    cancelled = []
    import retention_app.automations.services as automations

    monkeypatch.setattr(
        automations,
        "messages_cancel_pending_marketing",
        lambda *, customer, reason: cancelled.append(customer.pk) or 1,
    )
    customer = CustomerFactory(shop=shop, platform_id="7001")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            path_of(unsubscribe_url(customer)),
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.marketing_state == Customer.MarketingState.UNSUBSCRIBED
    assert customer.marketing_state_updated_at is not None
    assert cancelled == [customer.pk]
    change = ConsentChange.objects.get()
    assert change.source == ConsentChange.Source.ONE_CLICK
    # CELERY_TASK_ALWAYS_EAGER in tests: the write-back ran on commit.
    [sent] = fake_shopify.variables("customerEmailMarketingConsentUpdate")
    assert sent["input"]["customerId"] == "gid://shopify/Customer/7001"
    assert sent["input"]["emailMarketingConsent"]["marketingState"] == "UNSUBSCRIBED"
    change.refresh_from_db()
    assert change.synced_at is not None and change.attempts == 1

    # Idempotent: a second POST (page button) changes nothing and calls nothing.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(path_of(unsubscribe_url(customer)))
    assert response.status_code == 200
    assert ConsentChange.objects.count() == 1
    assert fake_shopify.count("customerEmailMarketingConsentUpdate") == 1
    assert cancelled == [customer.pk]


@pytest.mark.django_db(transaction=True)
def test_page_button_post_is_recorded_as_link(shop, client, fake_shopify):
    customer = CustomerFactory(shop=shop, locale="zh-Hant")
    response = client.post(path_of(unsubscribe_url(customer)))
    assert "已取消訂閱" in response.content.decode()
    assert ConsentChange.objects.get().source == ConsentChange.Source.UNSUBSCRIBE_LINK
    assert fake_shopify.count("customerEmailMarketingConsentUpdate") == 1


def sign(payload, *, salt=SALT, key=None):
    return signing.Signer(salt=salt, key=key).sign_object(payload)


def forged_tokens(customer, other_customer):
    good = unsubscribe_token(customer)
    payload, signature = good.split(":")
    other_payload = sign({"s": customer.shop_id, "c": other_customer.pk}).split(":")[0]
    return [
        good[:-1] + ("A" if good[-1] != "A" else "B"),  # signature altered
        f"{other_payload}:{signature}",  # payload swapped for another customer's, signature kept
        sign({"s": customer.shop_id, "c": customer.pk}, salt="another-salt"),
        sign({"s": customer.shop_id, "c": customer.pk}, key="not-our-secret"),
        signing.dumps({"s": customer.shop_id, "c": customer.pk}, salt=SALT),  # a timestamped token
        sign(["s", customer.shop_id]),  # validly signed, wrong shape
        f"{payload}:",
        "garbage",
    ]


def test_forged_or_tampered_tokens_answer_400_and_change_nothing(shop, client, fake_shopify):
    customer = CustomerFactory(shop=shop)
    other = CustomerFactory(shop=shop)
    for token in forged_tokens(customer, other):
        for method in (client.get, client.post):
            response = method(f"/m/u/{token}/")
            assert response.status_code == 400, token
            assert "invalid" in response.content.decode().lower()
    assert set(Customer.objects.values_list("marketing_state", flat=True)) == {"SUBSCRIBED"}
    assert ConsentChange.objects.count() == 0
    assert fake_shopify.calls == []


def test_a_customer_of_another_shop_in_a_token_for_this_shop_does_nothing(shop, other_shop, client):
    """Even a validly signed token is refused when its customer is not in the shop it names."""
    theirs = CustomerFactory(shop=other_shop)
    token = sign({"s": shop.pk, "c": theirs.pk})
    assert unsubscribe_token_read(token) == (shop.pk, theirs.pk)
    assert client.post(f"/m/u/{token}/").status_code == 400
    theirs.refresh_from_db()
    assert theirs.marketing_state == Customer.MarketingState.SUBSCRIBED


def test_already_unsubscribed_shows_done(shop, client):
    customer = CustomerFactory(shop=shop, marketing_state=Customer.MarketingState.UNSUBSCRIBED)
    response = client.get(path_of(unsubscribe_url(customer)))
    assert "You are unsubscribed" in response.content.decode()
    assert ConsentChange.objects.count() == 0


def test_other_methods_are_refused(shop, client):
    customer = CustomerFactory(shop=shop)
    assert client.put(path_of(unsubscribe_url(customer))).status_code == 405


def test_write_back_transient_error_is_retried_and_permanent_recorded(
    shop, fake_shopify, django_capture_on_commit_callbacks
):
    from retention_app.messaging.services import customer_unsubscribe
    from shop_integrations.gateway import PlatformRetryableError

    customer = CustomerFactory(shop=shop, platform_id="7009")
    with django_capture_on_commit_callbacks(execute=False):
        assert customer_unsubscribe(customer=customer, source=ConsentChange.Source.ONE_CLICK) is True
    change = ConsentChange.objects.get()

    fake_shopify.handlers["customerEmailMarketingConsentUpdate"] = lambda v: (502, {"errors": "bad gateway"})
    with pytest.raises(PlatformRetryableError):
        consent_change_write_back(consent_change_id=change.pk)
    change.refresh_from_db()
    assert change.synced_at is None and change.gave_up_at is None and change.attempts == 1
    assert change.last_error

    fake_shopify.handlers["customerEmailMarketingConsentUpdate"] = lambda v: {
        "customerEmailMarketingConsentUpdate": {
            "customer": None,
            "userErrors": [{"field": ["input"], "code": "INVALID", "message": "Customer not found"}],
        }
    }
    consent_change_write_back(consent_change_id=change.pk)
    change.refresh_from_db()
    assert change.gave_up_at is not None and "Customer not found" in change.last_error
    # Given up: no more calls.
    calls = len(fake_shopify.calls)
    consent_change_write_back(consent_change_id=change.pk)
    assert len(fake_shopify.calls) == calls


def test_unsynced_changes_are_requeued(shop, fake_shopify, django_capture_on_commit_callbacks):
    from retention_app.messaging.services import customer_unsubscribe

    customer = CustomerFactory(shop=shop)
    with django_capture_on_commit_callbacks(execute=False):  # the enqueue is "lost"
        customer_unsubscribe(customer=customer, source=ConsentChange.Source.ONE_CLICK)
    assert consent_changes_requeue_unsynced(older_than_seconds=3600) == 0  # too recent
    assert consent_changes_requeue_unsynced(older_than_seconds=-1) == 1  # eager: runs the write-back
    assert ConsentChange.objects.get().synced_at is not None
    assert consent_changes_requeue_unsynced(older_than_seconds=-1) == 0


@pytest.mark.django_db(transaction=True)
def test_one_click_over_real_http_like_a_mail_client(shop, live_server, settings):
    """A mail client POSTs to the List-Unsubscribe URL with no cookie and no CSRF token (RFC 8058)."""
    import requests

    settings.APP_URL = live_server.url
    customer = CustomerFactory(shop=shop)
    url = unsubscribe_headers(customer)["List-Unsubscribe"].strip("<>")
    assert url.startswith(live_server.url)

    tampered = url[:-3] + ("x" if url[-3] != "x" else "y") + "/"
    refused = requests.post(tampered, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert refused.status_code == 400
    customer.refresh_from_db()
    assert customer.marketing_state == Customer.MarketingState.SUBSCRIBED

    answer = requests.post(url, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert answer.status_code == 200
    customer.refresh_from_db()
    assert customer.marketing_state == Customer.MarketingState.UNSUBSCRIBED
    change = ConsentChange.objects.get()
    assert change.source == ConsentChange.Source.ONE_CLICK
    # This shop has no store token: the write-back gives up with a reason instead of retrying forever.
    assert change.gave_up_at is not None and change.last_error
