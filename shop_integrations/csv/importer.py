"""CSV import of order history for stores that come from another platform (contract in issue 4).

Columns (header row, any order): order_id, customer_id, email, created_at, total_price, currency are
required; first_name, last_name, locale, accepts_marketing, discount_code are optional; others are ignored.
Times are ISO 8601; a time without an offset is read in the shop's time zone. The whole file is parsed and
validated first and written in one transaction: a bad file imports nothing. Rows are written with the same
idempotent bulk upserts as the Shopify backfill, keyed by (shop, id), with `created_at` as the version, so
importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from retention_app.commerce.models import Customer, Order
from retention_app.commerce.services import BulkBatch, commerce_bulk_write
from retention_app.shops.models import Shop
from shop_integrations.csv.currencies import ISO_4217
from shop_integrations.types import CustomerData, OrderData

REQUIRED = ("order_id", "customer_id", "email", "created_at", "total_price", "currency")
OPTIONAL = ("first_name", "last_name", "locale", "accepts_marketing", "discount_code")
MAX_ERRORS = 20
_TRUE = {"true", "yes", "y", "1", "subscribed"}
_FALSE = {"false", "no", "n", "0", "not_subscribed", "unsubscribed", ""}
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:#/-]{0,63}\Z")
_DOMAIN_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+\Z")


class ImportFileError(ValueError):
    """The file is not importable; the message names each bad line and what is wrong with it."""


@dataclass(frozen=True)
class ImportResult:
    shop: Shop
    shop_created: bool
    orders_in_file: int
    customers_in_file: int
    orders_created: int
    customers_created: int


def validate_domain(domain: str) -> str:
    value = (domain or "").strip().lower()
    if not _DOMAIN_RE.fullmatch(value) or len(value) > 255:
        raise ImportFileError(f"--shop {domain!r} is not a domain name (e.g. acme-tea.com)")
    return value


def validate_timezone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ImportFileError(f"--timezone {name!r} is not an IANA time zone (e.g. Europe/Warsaw)") from None


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")  # Excel writes a BOM
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"line {line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from None


def _parse_time(value: str, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    text = value.strip()
    if not text:
        raise ValueError("is empty")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time (e.g. 2025-03-01T14:30:00+07:00)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed


def parse_orders(raw: bytes, *, tz: zoneinfo.ZoneInfo) -> tuple[list[OrderData], list[CustomerData]]:
    """Parse and validate the whole file; raise ImportFileError listing the bad lines (line 1 = header)."""
    text = _decode(raw)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError("line 1: the file is empty (expected a header row)") from None
    except csv.Error as exc:
        raise ImportFileError(f"line 1: {exc}") from None
    columns = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ImportFileError(
            f"line 1: missing column(s) {', '.join(missing)} (required: {', '.join(REQUIRED)})"
        )
    index = {name: columns.index(name) for name in (*REQUIRED, *OPTIONAL) if name in columns}
    errors: list[str] = []
    orders: dict[str, tuple[int, OrderData]] = {}
    customers: dict[str, CustomerData] = {}
    line = 1
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank line
            problems: list[str] = []

            def cell(name: str, _row=row) -> str:
                i = index.get(name)
                return _row[i].strip() if i is not None and i < len(_row) else ""

            order_id = cell("order_id")
            if not _ID_RE.fullmatch(order_id):
                problems.append(f"order_id {order_id!r} is empty or not an id")
            customer_id = cell("customer_id")
            if customer_id and not _ID_RE.fullmatch(customer_id):
                problems.append(f"customer_id {customer_id!r} is not an id")
            email = cell("email")
            if email:
                try:
                    validate_email(email)
                except ValidationError:
                    problems.append(f"email {email!r} is not an email address")
            placed_at = None
            try:
                placed_at = _parse_time(cell("created_at"), tz)
            except ValueError as exc:
                problems.append(f"created_at {exc}")
            total = None
            try:
                total = Decimal(cell("total_price"))
                if (
                    not total.is_finite()
                    or total < 0
                    or total.as_tuple().exponent < -4
                    or total >= Decimal("1e14")
                ):
                    raise InvalidOperation
            except InvalidOperation:
                problems.append(f"total_price {cell('total_price')!r} is not an amount (e.g. 129.90)")
            currency = cell("currency").upper()
            if currency not in ISO_4217:
                problems.append(f"currency {cell('currency')!r} is not an ISO 4217 code (e.g. USD, THB, PLN)")
            marketing = cell("accepts_marketing").lower()
            if marketing not in _TRUE and marketing not in _FALSE:
                problems.append(f"accepts_marketing {cell('accepts_marketing')!r} is not yes/no")
            locale = cell("locale")
            if len(locale) > 16:
                problems.append(f"locale {locale!r} is too long")
            if problems:
                errors.extend(f"line {line}: {p}" for p in problems)
                if len(errors) >= MAX_ERRORS:
                    break
                continue
            code = cell("discount_code").upper()
            customer = None
            if customer_id:
                customer = CustomerData(
                    platform_id=customer_id,
                    email=email,
                    first_name=cell("first_name"),
                    last_name=cell("last_name"),
                    locale=locale,
                    marketing_state=(
                        ("SUBSCRIBED" if marketing in _TRUE else "NOT_SUBSCRIBED")
                        if "accepts_marketing" in index
                        else None
                    ),
                    platform_updated_at=placed_at,
                )
            order = OrderData(
                platform_id=order_id,
                name=order_id if order_id.startswith("#") else f"#{order_id}",
                email=email,
                currency=currency,
                total_price=total,
                subtotal_price=total,
                placed_at=placed_at,
                platform_updated_at=placed_at,
                financial_status="paid",
                discount_codes=(code,) if code else (),
                customer_locale=locale,
                buyer_accepts_marketing=marketing in _TRUE,
                customer_platform_id=customer_id,
                customer=customer,
            )
            seen = orders.get(order_id)
            if seen is not None:
                if seen[1] != order:
                    errors.append(
                        f"line {line}: order_id {order_id} repeats line {seen[0]} with different values"
                    )
                continue
            orders[order_id] = (line, order)
            if customer is not None:
                known = customers.get(customer_id)
                # The customer's details are those of their latest order in the file.
                if known is None or placed_at >= known.platform_updated_at:
                    customers[customer_id] = customer
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: {exc}")
    if errors:
        more = " (first 20 shown)" if len(errors) >= MAX_ERRORS else ""
        raise ImportFileError(f"{len(errors)} problem(s){more}; nothing was imported:\n" + "\n".join(errors))
    if not orders:
        raise ImportFileError("line 2: no orders in the file")
    return [o for _, o in orders.values()], list(customers.values())


def import_orders(
    *, domain: str, raw: bytes, timezone_name: str = "UTC", timezone_given: bool = False
) -> ImportResult:
    """Validate the whole file, then write it in one transaction (all or nothing). Creates the shop (platform
    "import", status imported, the given time zone) when no shop has that domain."""
    domain = validate_domain(domain)
    tz = validate_timezone(timezone_name)
    existing = Shop.objects.filter(domain=domain).order_by("-platform").first()  # "shopify" > "import"
    orders, customers = parse_orders(raw, tz=existing_tz(existing) if existing and not timezone_given else tz)
    with transaction.atomic():
        shop = Shop.objects.select_for_update().filter(pk=existing.pk).first() if existing else None
        created = False
        if shop is None:
            shop, created = Shop.objects.get_or_create(
                platform=Shop.Platform.IMPORT,
                domain=domain,
                defaults={
                    "status": Shop.Status.IMPORTED,
                    "timezone": timezone_name,
                    "name": domain,
                    "currency": orders[0].currency,
                    "storefront_url": f"https://{domain}",
                },
            )
        elif timezone_given and shop.timezone != timezone_name:
            shop.timezone = timezone_name
            shop.save(update_fields=["timezone", "updated_at"])
        orders_before = Order.objects.filter(shop=shop).count()
        customers_before = Customer.objects.filter(shop=shop).count()
        for start in range(0, len(orders), 5000):
            batch = BulkBatch.empty()
            if start == 0:
                batch.customers.extend(customers)
            batch.orders.extend(orders[start : start + 5000])
            commerce_bulk_write(shop_id=shop.pk, batch=batch)
        return ImportResult(
            shop=shop,
            shop_created=created,
            orders_in_file=len(orders),
            customers_in_file=len(customers),
            orders_created=Order.objects.filter(shop=shop).count() - orders_before,
            customers_created=Customer.objects.filter(shop=shop).count() - customers_before,
        )


def existing_tz(shop: Shop) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(shop.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")
