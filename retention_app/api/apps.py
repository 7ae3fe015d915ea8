from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "retention_app.api"
    label = "api"

    def ready(self):
        from retention_app.api import schema  # noqa: F401  (registers the OpenAPI auth extensions)
