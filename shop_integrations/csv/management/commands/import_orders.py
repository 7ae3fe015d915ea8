"""`python manage.py import_orders --shop DOMAIN FILE.csv [--timezone Europe/Warsaw]` (issue 4 contract).

Exits 0 after importing every row; exits non-zero naming each bad line and its problem, importing nothing.
"""

from django.core.management.base import BaseCommand, CommandError

from shop_integrations.csv.importer import ImportFileError, import_orders


class Command(BaseCommand):
    help = "Import order history from a CSV file (all or nothing; a second import changes nothing)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--shop", required=True, help="the shop's domain; created (platform import) if missing"
        )
        parser.add_argument(
            "file", help="CSV with order_id, customer_id, email, created_at, total_price, currency"
        )
        parser.add_argument(
            "--timezone",
            default=None,
            help="IANA time zone of the shop (default UTC) and of times without offset",
        )

    def handle(self, *args, **options):
        path = options["file"]
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        given = options["timezone"] is not None
        try:
            result = import_orders(
                domain=options["shop"],
                raw=raw,
                timezone_name=options["timezone"] or "UTC",
                timezone_given=given,
            )
        except ImportFileError as exc:
            raise CommandError(f"{path}: {exc}") from None
        self.stdout.write(
            f"{result.shop.domain}: {result.orders_in_file} orders ({result.orders_created} new) and "
            f"{result.customers_in_file} customers ({result.customers_created} new) imported"
            + (" into a new shop" if result.shop_created else "")
        )
