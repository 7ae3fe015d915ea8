"""The outbound HTTP wrapper: typed errors, no redirects followed, no secrets in error messages."""

import pytest
import requests
import responses

from shop_integrations.shopify.http import (
    ShopifyPermanentError,
    ShopifyRetryableError,
    ShopifyUnauthorizedError,
    post_json,
)

URL = "https://acme.myshopify.com/admin/oauth/access_token"


@responses.activate
def test_redirects_are_not_followed():
    # Following a redirect could carry the client secret or a token to another host.
    responses.post(URL, status=302, headers={"Location": "https://evil.com/steal"})
    with pytest.raises(ShopifyPermanentError, match="302"):
        post_json(URL, {"client_secret": "s3cret"})
    assert len(responses.calls) == 1


@responses.activate
def test_error_messages_do_not_contain_the_request():
    responses.post(URL, status=400, json={"error": "invalid_request"})
    with pytest.raises(ShopifyPermanentError) as info:
        post_json(URL, {"client_secret": "s3cret"}, headers={"X-Shopify-Access-Token": "shpat_secret"})
    assert "s3cret" not in str(info.value) and "shpat_secret" not in str(info.value)
    assert "invalid_request" in str(info.value) and info.value.status == 400


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"status": 401}, ShopifyUnauthorizedError),
        ({"status": 429}, ShopifyRetryableError),
        ({"status": 500}, ShopifyRetryableError),
        ({"status": 503}, ShopifyRetryableError),
        ({"status": 404}, ShopifyPermanentError),
        ({"status": 200, "body": "<html>not json</html>"}, ShopifyPermanentError),
        ({"body": requests.ConnectTimeout("slow")}, ShopifyRetryableError),
        ({"body": requests.ConnectionError("refused")}, ShopifyRetryableError),
    ],
)
@responses.activate
def test_typed_errors(kwargs, error):
    responses.post(URL, **kwargs)
    with pytest.raises(error):
        post_json(URL, {})


@responses.activate
def test_success_returns_json_and_sends_a_timeout(monkeypatch):
    seen = {}
    original = requests.Session.post

    def spy(self, url, **kwargs):
        seen.update(kwargs)
        return original(self, url, **kwargs)

    monkeypatch.setattr(requests.Session, "post", spy)
    responses.post(URL, json={"ok": True})
    assert post_json(URL, {"a": 1}) == {"ok": True}
    assert seen["timeout"] and seen["allow_redirects"] is False
