from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "retention_app.api"
    label = "api"
