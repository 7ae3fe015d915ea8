"""Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS (after adding a new key)."""

from django.core.management.base import BaseCommand

from retention_app.shops.services import credentials_reencrypt


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the newest key in FIELD_ENCRYPTION_KEYS (the first one)."

    def handle(self, *args, **options):
        count = credentials_reencrypt()
        self.stdout.write(f"re-encrypted {count} credential(s) with the first key of FIELD_ENCRYPTION_KEYS")
