from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "retention_app.tracking"
    label = "tracking"

    def ready(self) -> None:
        from retention_app.tracking import receivers  # noqa: F401 (connects the signal receivers)
