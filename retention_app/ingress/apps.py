from django.apps import AppConfig


class IngressConfig(AppConfig):
    name = "retention_app.ingress"
    label = "ingress"
