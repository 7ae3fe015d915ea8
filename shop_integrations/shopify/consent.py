"""Shopify side of email marketing consent: write an unsubscribe back to the store.

Called only through shop_integrations.gateway. Errors come out as the gateway's neutral errors.
"""

from __future__ import annotations

import datetime as dt

from shop_integrations.gateway import PlatformPermanentError
from shop_integrations.shopify.discounts import _execute, customer_gid

# Only these can be set through the mutation (the schema says so); the rest are read-only states.
SETTABLE_STATES = {"SUBSCRIBED", "UNSUBSCRIBED", "PENDING"}


def update_email_consent(
    shop, *, customer_platform_id: str, marketing_state: str, updated_at: dt.datetime
) -> None:
    if marketing_state not in SETTABLE_STATES:
        raise PlatformPermanentError(f"marketing state {marketing_state!r} cannot be set on Shopify")
    email_consent: dict = {"marketingState": marketing_state, "consentUpdatedAt": updated_at.isoformat()}
    if marketing_state == "SUBSCRIBED":
        email_consent["marketingOptInLevel"] = "SINGLE_OPT_IN"
    # Reference: https://shopify.dev/docs/api/admin-graphql/2026-01/mutations/customerEmailMarketingConsentUpdate
    data = _execute(
        shop,
        "customer_email_marketing_consent_update",
        {"input": {"customerId": customer_gid(customer_platform_id), "emailMarketingConsent": email_consent}},
    )
    errors = ((data or {}).get("customerEmailMarketingConsentUpdate") or {}).get("userErrors") or []
    if errors:
        raise PlatformPermanentError(
            "customerEmailMarketingConsentUpdate refused: " + "; ".join(e.get("message", "") for e in errors)
        )
