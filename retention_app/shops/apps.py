from django.apps import AppConfig


class ShopsConfig(AppConfig):
    name = "retention_app.shops"
    label = "shops"
