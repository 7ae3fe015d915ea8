"""Thin Celery entry points of the automation engine (ids in; the services hold the logic)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="automations.messages_dispatch", ignore_result=True)
def messages_dispatch() -> int:
    """Periodic (retention_app.schedules): claim due messages and enqueue their send batches."""
    from retention_app.automations import services

    return services.messages_dispatch()


@shared_task(
    name="automations.messages_send_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def messages_send_batch(message_ids: list[int], claim_token: str) -> dict[str, int]:
    """Send a batch of messages claimed with `claim_token`. Idempotent: rows no longer claimed by that
    token (sent, reclaimed, cancelled) are skipped, so a redelivered task does nothing twice."""
    from retention_app.automations import services

    counts = services.messages_send_batch(message_ids=list(message_ids), claim_token=claim_token)
    # Refill the pipeline: claim as many due rows as this batch held (no-op when nothing is due).
    services.messages_dispatch(max_claims=len(message_ids), recover=False)
    return counts


@shared_task(name="automations.winback_scan", ignore_result=True)
def winback_scan() -> None:
    """Periodic: one win-back scan task per installed shop."""
    from retention_app.shops.models import Shop

    for shop_id in Shop.objects.filter(status=Shop.Status.INSTALLED).values_list("id", flat=True):
        winback_scan_shop.delay(shop_id)


@shared_task(name="automations.winback_scan_shop", acks_late=True, ignore_result=True)
def winback_scan_shop(shop_id: int) -> int:
    from retention_app.automations import services
    from retention_app.shops.models import Shop

    shop = Shop.objects.filter(pk=shop_id, status=Shop.Status.INSTALLED).first()
    if shop is None:
        return 0
    return services.winback_schedule_lapsed(shop=shop)


@shared_task(name="automations.orders_catch_up", ignore_result=True)
def orders_catch_up() -> int:
    """Periodic: recent orders without automation messages go through the order rules (safety net)."""
    from retention_app.automations import services

    return services.automations_catch_up_orders()
