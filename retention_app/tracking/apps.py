from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "retention_app.tracking"
    label = "tracking"
