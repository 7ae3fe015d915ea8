"""verify_callback_hmac: Shopify's documented example, array parameters, escaping, forgeries."""

import hashlib
import hmac

import pytest

from shop_integrations.shopify.oauth import callback_signing_message, verify_callback_hmac

SECRET = "hush"


def sign(message: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def test_shopify_documented_example_verifies():
    # Reference: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
    params = {
        "code": "0907a61c0c8d55e99db179b68161bc00",
        "hmac": "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf",
        "shop": "some-shop.myshopify.com",
        "state": "0.6784241404160823",
        "timestamp": "1337178173",
    }
    assert verify_callback_hmac(params, SECRET) is True


def test_documented_example_with_other_secret_or_changed_param_fails():
    params = {
        "code": "0907a61c0c8d55e99db179b68161bc00",
        "hmac": "700e2dadb827fcc8609e9d5ce208b2e9cdaab9df07390d2cbca10d7c328fc4bf",
        "shop": "some-shop.myshopify.com",
        "state": "0.6784241404160823",
        "timestamp": "1337178173",
    }
    assert verify_callback_hmac(params, "other-secret") is False
    assert verify_callback_hmac({**params, "shop": "evil.myshopify.com"}, SECRET) is False
    assert verify_callback_hmac({**params, "extra": "1"}, SECRET) is False


def test_array_params_sign_as_json_list_in_given_order():
    message = 'ids=["2", "1"]&shop=a.myshopify.com&timestamp=1'
    params = {"shop": "a.myshopify.com", "timestamp": "1", "ids[]": ["2", "1"], "hmac": sign(message)}
    assert callback_signing_message(params) == message
    assert verify_callback_hmac(params, SECRET)
    # Another order of the array items is another message.
    assert not verify_callback_hmac({**params, "ids[]": ["1", "2"]}, SECRET)


def test_escaping_of_percent_ampersand_and_equals():
    params = {"a%b": "x&y", "k=v": "100%", "shop": "a.myshopify.com"}
    message = callback_signing_message(params)
    assert message == "a%25b=x%26y&k%3Dv=100%25&shop=a.myshopify.com"
    assert verify_callback_hmac({**params, "hmac": sign(message)}, SECRET)
    # Without escaping, a value could smuggle a second parameter: these must not collide.
    forged = {"a%b": "x", "y": "", "k=v": "100%", "shop": "a.myshopify.com", "hmac": sign(message)}
    assert not verify_callback_hmac(forged, SECRET)


def test_hmac_and_signature_are_excluded_and_keys_sorted():
    params = {"timestamp": "1", "shop": "a.myshopify.com", "signature": "zzz", "code": "c"}
    assert callback_signing_message(params) == "code=c&shop=a.myshopify.com&timestamp=1"


@pytest.mark.parametrize("bad", [None, "", "nothex", ["a", "b"], 123])
def test_missing_or_malformed_hmac_is_false(bad):
    params = {"shop": "a.myshopify.com", "timestamp": "1"}
    if bad is not None:
        params["hmac"] = bad
    assert verify_callback_hmac(params, SECRET) is False


def test_empty_secret_never_verifies():
    params = {"shop": "a.myshopify.com"}
    params["hmac"] = hmac.new(b"", b"shop=a.myshopify.com", hashlib.sha256).hexdigest()
    assert verify_callback_hmac(params, "") is False
