"""POST /webhooks/shopify: the single endpoint for every Shopify webhook topic, compliance included.

Order of checks: HMAC over the raw bytes (401), required headers (400), JSON body (400); then the delivery
is handed over (retention_app/ingress/services.webhook_delivery_receive): commerce topics appended to the
Redis buffer and stored once per webhook id by the worker's drain (answer "accepted"), lifecycle and
privacy topics stored once per webhook id before the answer ("stored" / "duplicate"), processing enqueued
after commit. Nothing else happens in the request, so it answers in milliseconds (Shopify gives up after
about 5 s).

Unknown topics are answered 200 and logged, but NOT stored: the app only subscribes to topics it handles,
so an unknown topic is a configuration slip, and storing bodies full of personal data we have no use for
would go against data minimisation. Deliveries for a shop unknown here are answered 200, logged, and not
stored either (a compliance topic still leaves an audit record saying nothing was held).

# Reference: https://shopify.dev/docs/apps/build/webhooks/subscribe/https
"""

from __future__ import annotations

import json
import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from retention_app.ingress.services import InvalidPayload, parse_payload, webhook_delivery_receive
from shop_integrations.shopify import webhook_handlers
from shop_integrations.shopify.webhooks import verify_webhook_request

logger = logging.getLogger(__name__)

REQUIRED_HEADERS = ("X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id")
# WSGI environ keys of the headers read here: reading request.META directly spares building the whole
# request.headers mapping on every delivery.
_META = {
    name: "HTTP_" + name.upper().replace("-", "_")
    for name in (
        *REQUIRED_HEADERS,
        "X-Shopify-Hmac-Sha256",
        "X-Shopify-Event-Id",
        "X-Shopify-API-Version",
        "X-Shopify-Triggered-At",
    )
}


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
@require_POST
def shopify_webhook(request: HttpRequest) -> HttpResponse:
    body = request.body
    meta = request.META

    def header(name: str) -> str:
        return meta.get(_META[name], "")

    if not verify_webhook_request(body, header("X-Shopify-Hmac-Sha256")):
        logger.warning("webhook with a missing or invalid HMAC rejected")
        return _error("invalid or missing X-Shopify-Hmac-Sha256", 401)
    values = {name: header(name).strip() for name in REQUIRED_HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        return _error(f"missing header(s): {', '.join(missing)}", 400)
    topic = values["X-Shopify-Topic"]
    shop_domain = values["X-Shopify-Shop-Domain"].lower()
    webhook_id = values["X-Shopify-Webhook-Id"]
    if len(topic) > 100 or len(shop_domain) > 255 or len(webhook_id) > 255:
        return _error("header value too long", 400)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _error("body is not JSON", 400)
    try:
        if not webhook_handlers.is_known_topic(topic):
            parse_payload(text)  # a body that is not JSON is a 400 for any topic
            logger.warning(
                "webhook topic %s from %s not handled (id %s): ignored", topic, shop_domain, webhook_id
            )
            return JsonResponse({"status": "ignored", "reason": "unknown topic"})
        # The body is handed over as text: on PostgreSQL the INSERT's jsonb cast is the JSON check, which
        # spares parsing every body in Python (the receiver parses whatever PostgreSQL cannot check).
        outcome = webhook_delivery_receive(
            platform="shopify",
            shop_domain=shop_domain,
            topic=topic,
            webhook_id=webhook_id,
            raw_body=text,
            event_id=header("X-Shopify-Event-Id")[:255],
            api_version=header("X-Shopify-API-Version")[:20],
            triggered_at=webhook_handlers.parse_triggered_at(header("X-Shopify-Triggered-At")),
            is_compliance=topic in webhook_handlers.COMPLIANCE_TOPICS,
            critical=topic in webhook_handlers.CRITICAL_TOPICS,
        )
    except InvalidPayload as exc:
        return _error(str(exc), 400)
    return _status_response(outcome.value)


_STATUS_BODIES: dict[str, bytes] = {}


def _status_response(status: str) -> HttpResponse:
    """JsonResponse({"status": status}) without encoding the same few bodies on every delivery."""
    body = _STATUS_BODIES.get(status)
    if body is None:
        body = _STATUS_BODIES[status] = json.dumps({"status": status}).encode()
    return HttpResponse(body, content_type="application/json")


@csrf_exempt
def bench_noop(request: HttpRequest) -> HttpResponse:
    """A Django view that does nothing: the baseline of bench/webhook_ingress.py (DEBUG or BENCH only)."""
    return HttpResponse(b"ok", content_type="text/plain")
