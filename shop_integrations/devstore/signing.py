"""Shopify's side of the signatures: OAuth redirect HMAC, webhook HMAC, App Bridge session tokens (HS256 JWT).

Written from Shopify's documentation on purpose, independently of shop_integrations.shopify: the dev store
checks the app, so it must not share the app's signing code (a bug there would be mirrored here).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid


def _escape_oauth(text: str, *, key: bool) -> str:
    # Reference: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
    # "%" and "&" are escaped in keys and values, "=" additionally in keys.
    text = text.replace("%", "%25").replace("&", "%26")
    if key:
        text = text.replace("=", "%3D")
    return text


def oauth_message(params: dict[str, str | list[str]]) -> str:
    """The string Shopify signs for an OAuth redirect: every param but hmac/signature, sorted by key,
    `key=value` joined with `&`; list params (`ids[]`) sign as `ids=["2", "1"]`."""
    parts = []
    for name, value in params.items():
        if name in ("hmac", "signature"):
            continue
        if isinstance(value, list):
            name = name[:-2] if name.endswith("[]") else name
            value = "[" + ", ".join(f'"{v}"' for v in value) + "]"
        parts.append((_escape_oauth(name, key=True), _escape_oauth(str(value), key=False)))
    parts.sort()
    return "&".join(f"{k}={v}" for k, v in parts)


def oauth_hmac(params: dict, secret: str) -> str:
    """Lowercase hex HMAC-SHA256 of `oauth_message(params)` with the app secret."""
    return hmac.new(secret.encode(), oauth_message(params).encode(), hashlib.sha256).hexdigest()


def webhook_hmac(body: bytes, secret: str) -> str:
    """The X-Shopify-Hmac-Sha256 header: base64 of HMAC-SHA256 of the raw body with the app secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_encode(claims: dict, secret: str) -> str:
    """An HS256 JWT (header {"alg":"HS256","typ":"JWT"}), as App Bridge session tokens are."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = _b64url(hmac.new(secret.encode(), signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


class InvalidJWT(ValueError):
    pass


def jwt_decode(token: str, secret: str, *, audience: str, leeway: int = 10) -> dict:
    """Verify an HS256 JWT: signature, alg, aud, exp and nbf (with leeway). Raises InvalidJWT."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_b64url_decode(header_b64))
        claims = json.loads(_b64url_decode(payload_b64))
        signature = _b64url_decode(signature_b64)
    except (ValueError, TypeError) as exc:
        raise InvalidJWT("malformed token") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise InvalidJWT("unsupported token")
    expected = hmac.new(secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise InvalidJWT("bad signature")
    now = time.time()
    if claims.get("aud") != audience:
        raise InvalidJWT("wrong audience")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] + leeway < now:
        raise InvalidJWT("expired")
    if isinstance(claims.get("nbf"), int | float) and claims["nbf"] - leeway > now:
        raise InvalidJWT("not yet valid")
    return claims


def session_token_claims(*, shop: str, client_id: str, user_id: int = 1, lifetime: int = 60) -> dict:
    """Claims of an App Bridge session token for `shop`, as Shopify admin mints them."""
    # Reference: https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens
    now = int(time.time())
    return {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": client_id,
        "sub": str(user_id),
        "exp": now + lifetime,
        "nbf": now,
        "iat": now,
        "jti": str(uuid.uuid4()),
        "sid": uuid.uuid4().hex,
    }
