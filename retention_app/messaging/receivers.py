"""Privacy receivers of messaging (connected in MessagingConfig.ready()). Templates hold no customer data;
consent changes made through unsubscribe links do."""

from __future__ import annotations

from .models import ConsentChange


def on_customer_data_export(sender, shop, customer=None, **kwargs) -> dict:
    rows = [] if customer is None else ConsentChange.objects.filter(shop=shop, customer=customer)
    return {
        "section": "email_consent_changes",
        "data": [
            {
                "marketing_state": row.marketing_state,
                "source": row.source,
                "created_at": row.created_at.isoformat(),
                "written_to_store_at": row.synced_at.isoformat() if row.synced_at else None,
            }
            for row in rows
        ],
    }


def on_customer_redact(sender, shop, customer=None, **kwargs) -> None:
    """The customer is erased on the store too: nothing left to write back, no history to keep."""
    if customer is not None:
        ConsentChange.objects.filter(shop=shop, customer=customer).delete()
