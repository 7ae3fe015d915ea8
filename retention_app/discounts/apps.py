from django.apps import AppConfig


class DiscountsConfig(AppConfig):
    name = "retention_app.discounts"
    label = "discounts"
