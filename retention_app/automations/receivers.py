"""Signal receivers connected in AutomationsConfig.ready(). Thin: each calls one service.

Commerce events are sent on commit; every handler is idempotent (webhooks arrive more than once), and
a failure is logged rather than raised so it never breaks the sender's request or task.
"""

from __future__ import annotations

import logging

from retention_app.automations import services

logger = logging.getLogger(__name__)


def on_order_upserted(sender, order, created: bool = False, was_cancelled: bool = False, **kwargs) -> None:
    try:
        services.automations_on_order(order=order, created=created)
    except Exception:
        logger.exception("automations: order_upserted failed for order %s", getattr(order, "pk", None))


def on_fulfillment_upserted(
    sender, fulfillment, created: bool = False, previous_shipment_status: str = "", **kwargs
) -> None:
    try:
        services.automations_on_fulfillment(
            fulfillment=fulfillment, created=created, previous_shipment_status=previous_shipment_status
        )
    except Exception:
        logger.exception("automations: fulfillment_upserted failed for %s", getattr(fulfillment, "pk", None))


def on_customer_upserted(
    sender, customer, created: bool = False, previous_marketing_state: str = "", **kwargs
):
    try:
        services.automations_on_customer(customer=customer, previous_marketing_state=previous_marketing_state)
    except Exception:
        logger.exception("automations: customer_upserted failed for %s", getattr(customer, "pk", None))


def on_shop_installed(sender, shop, reinstalled: bool = False, **kwargs) -> None:
    services.rules_install_defaults(shop=shop)


def on_shop_uninstalled(sender, shop, **kwargs) -> None:
    services.messages_cancel_for_shop(shop=shop, reason="The app was uninstalled from the store.")


def on_customer_redact(sender, shop, customer=None, **kwargs) -> None:
    if customer is not None:
        services.messages_redact_customer(customer=customer)


def on_customer_data_export(sender, shop, customer=None, **kwargs) -> dict:
    if customer is None:
        return {"section": "automations", "data": []}
    return services.messages_export_customer(customer=customer)
