from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "retention_app.metrics"
    label = "metrics"
