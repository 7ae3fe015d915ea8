"""`python manage.py api_token_create --shop DOMAIN [--name NAME]`: print a new API token (shown once)."""

from django.core.management.base import BaseCommand, CommandError

from retention_app.api.services import api_token_create
from retention_app.shops.models import Shop


class Command(BaseCommand):
    help = "Create a REST API token for one shop and print it (it is not stored in clear)."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True)
        parser.add_argument("--name", default="CLI token")

    def handle(self, *args, **options):
        shop = Shop.objects.filter(domain=options["shop"].strip().lower()).first()
        if shop is None:
            raise CommandError(f"unknown shop: {options['shop']!r}")
        _, plain = api_token_create(shop=shop, name=options["name"])
        self.stdout.write(plain)
