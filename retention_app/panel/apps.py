from django.apps import AppConfig


class PanelConfig(AppConfig):
    name = "retention_app.panel"
    label = "panel"
