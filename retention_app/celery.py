"""The Celery application.

Queues are in `retention_app.queues`, periodic tasks in `retention_app.schedules`.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retention_app.settings")

app = Celery("boomerang")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_schedule(sender: Celery, **kwargs) -> None:
    from retention_app.schedules import BEAT_SCHEDULE

    sender.conf.beat_schedule = BEAT_SCHEDULE


@app.task(name="boomerang.ping", ignore_result=True)
def ping(path: str) -> None:
    """Health check: proves a worker consumes the default queue by writing "pong" to `path`."""
    with open(path, "w") as fh:
        fh.write("pong")
