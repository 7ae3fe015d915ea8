"""Every periodic task, in one place. Each entry has `expires` so a backlog never piles up.

Add entries here (one per periodic task); the task itself lives in its domain's `tasks.py`.
"""

BEAT_SCHEDULE: dict[str, dict] = {}

# Webhook ingress (retention_app/ingress/tasks.py).
BEAT_SCHEDULE["ingress-requeue-stale-webhook-deliveries"] = {
    "task": "retention_app.ingress.tasks.requeue_stale_webhook_deliveries",
    "schedule": 300.0,
    "options": {"expires": 240},
}
BEAT_SCHEDULE["ingress-purge-old-webhook-deliveries"] = {
    "task": "retention_app.ingress.tasks.purge_old_webhook_deliveries",
    "schedule": 3600.0,
    "options": {"expires": 3000},
}

# Messaging (retention_app/messaging/tasks.py): unsubscribes not yet written back to the store.
BEAT_SCHEDULE["messaging-consent-write-back-requeue"] = {
    "task": "messaging.consent_write_back_requeue",
    "schedule": 600.0,
    "options": {"expires": 540},
}

# Discounts (retention_app/discounts/tasks.py): redemptions on orders written without an event.
BEAT_SCHEDULE["discounts-redeem-recent-orders"] = {
    "task": "discounts.redeem_recent_orders",
    "schedule": 1800.0,
    "options": {"expires": 1500},
}

# Automations (retention_app/automations/tasks.py): the durable-schedule dispatcher and the win-back scan.
BEAT_SCHEDULE["automations-messages-dispatch"] = {
    "task": "automations.messages_dispatch",
    "schedule": 10.0,
    "options": {"expires": 9},
}
BEAT_SCHEDULE["automations-winback-scan"] = {
    "task": "automations.winback_scan",
    "schedule": 3600.0,
    "options": {"expires": 3000},
}
BEAT_SCHEDULE["automations-orders-catch-up"] = {
    "task": "automations.orders_catch_up",
    "schedule": 600.0,
    "options": {"expires": 540},
}

# Commerce sync (shop_integrations/shopify/sync.py, reconcile.py): take over backfills whose worker died,
# and repair missed webhooks by reading what changed since the last pass.
BEAT_SCHEDULE["commerce-resume-stalled-sync-jobs"] = {
    "task": "shop_integrations.shopify.sync.resume_stalled_sync_jobs",
    "schedule": 60.0,
    "options": {"expires": 50},
}
BEAT_SCHEDULE["commerce-reconcile"] = {
    "task": "shop_integrations.shopify.reconcile.reconcile_all_shops",
    "schedule": 900.0,
    "options": {"expires": 800},
}

# Tracking pages (retention_app/tracking/tasks.py): move page views buffered in Redis into the database.
BEAT_SCHEDULE["tracking-flush-page-views"] = {
    "task": "tracking.flush_page_views",
    "schedule": 30.0,
    "options": {"expires": 25},
}
