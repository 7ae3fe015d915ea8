from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "retention_app.commerce"
    label = "commerce"
