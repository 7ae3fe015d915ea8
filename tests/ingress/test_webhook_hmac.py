"""verify_webhook_hmac: the public contract (base64 HMAC-SHA256 of the raw body, never raises)."""

import base64
import hashlib
import hmac

import pytest

from shop_integrations.shopify.webhooks import sign_webhook_body, verify_webhook_hmac

BODY = b'{"id": 820982911946154508, "email": "jon@example.com"}'
SECRET = "hush"


def _sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_a_correct_signature_is_accepted():
    assert verify_webhook_hmac(BODY, _sign(BODY, SECRET), SECRET) is True


def test_the_signing_helper_matches_shopifys_algorithm():
    assert sign_webhook_body(BODY, SECRET) == _sign(BODY, SECRET)


def test_a_signature_made_with_another_secret_is_rejected():
    assert verify_webhook_hmac(BODY, _sign(BODY, "other"), SECRET) is False


def test_a_tampered_body_is_rejected():
    assert verify_webhook_hmac(BODY + b" ", _sign(BODY, SECRET), SECRET) is False


def test_the_signature_is_over_raw_bytes_not_reserialized_json():
    # Same JSON meaning, different bytes: must not verify (verification happens before parsing).
    other_bytes = b'{"email": "jon@example.com", "id": 820982911946154508}'
    assert verify_webhook_hmac(other_bytes, _sign(BODY, SECRET), SECRET) is False


def test_hex_digest_instead_of_base64_is_rejected():
    hex_sig = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert verify_webhook_hmac(BODY, hex_sig, SECRET) is False


@pytest.mark.parametrize(
    "header",
    ["", None, "not base64 at all", "ééé", "\x00\x01", "=" * 44, 12345, b"bytes"],
)
def test_missing_or_garbage_headers_are_false_and_never_raise(header):
    assert verify_webhook_hmac(BODY, header, SECRET) is False


@pytest.mark.parametrize("body", [None, "a str body", 42])
def test_a_body_that_is_not_bytes_is_false(body):
    assert verify_webhook_hmac(body, _sign(BODY, SECRET), SECRET) is False


def test_an_empty_secret_never_verifies():
    assert verify_webhook_hmac(BODY, _sign(BODY, ""), "") is False


def test_bytearray_and_memoryview_bodies_work():
    sig = _sign(BODY, SECRET)
    assert verify_webhook_hmac(bytearray(BODY), sig, SECRET) is True
    assert verify_webhook_hmac(memoryview(BODY), sig, SECRET) is True


def test_surrounding_whitespace_in_the_header_is_tolerated():
    assert verify_webhook_hmac(BODY, f" {_sign(BODY, SECRET)}\n", SECRET) is True
