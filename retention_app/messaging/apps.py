from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "retention_app.messaging"
    label = "messaging"
