from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "retention_app.automations"
    label = "automations"
