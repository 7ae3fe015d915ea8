"""`manage.py import_orders`: happy path, idempotent, and every bad-file case imports nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from retention_app.commerce.models import Customer, Order
from retention_app.shops.models import Shop

pytestmark = pytest.mark.django_db

GOOD = (
    "order_id,customer_id,email,created_at,total_price,currency,first_name,last_name,locale,accepts_marketing,"
    "discount_code\n"
    "1001,c1,ploy@example.co.th,2025-03-01T14:30:00+07:00,1290.00,THB,พลอย,ศรีสุข,th,yes,welcome10\n"
    "1002,c2,wang@example.tw,2025-03-02 09:00:00,880.5,TWD,明,王,zh-TW,no,\n"
    "1003,c1,ploy@example.co.th,2025-04-01T10:00:00Z,450,THB,Ploy,S.,th,yes,\n"
)


def write(tmp_path, text, *, bom=False, name="orders.csv"):
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return str(path)


def run(path, *extra):
    call_command("import_orders", "--shop", "old-store.example.com", path, *extra)


def snapshot():
    return (
        list(Order.objects.order_by("platform_id").values()),
        list(Customer.objects.order_by("platform_id").values()),
    )


def test_happy_path_with_bom_thai_and_chinese_names(tmp_path, capsys):
    run(write(tmp_path, GOOD, bom=True), "--timezone", "Asia/Taipei")
    shop = Shop.objects.get(domain="old-store.example.com")
    assert shop.platform == Shop.Platform.IMPORT and shop.status == Shop.Status.IMPORTED
    assert shop.timezone == "Asia/Taipei"
    assert Order.objects.filter(shop=shop).count() == 3
    first = Order.objects.get(shop=shop, platform_id="1001")
    assert first.total_price == Decimal("1290.00") and first.currency == "THB"
    assert first.placed_at == dt.datetime(2025, 3, 1, 7, 30, tzinfo=dt.UTC)
    assert first.discount_codes == ["WELCOME10"]
    # a time without offset is read in the shop's time zone (Asia/Taipei, UTC+8)
    assert Order.objects.get(platform_id="1002").placed_at == dt.datetime(2025, 3, 2, 1, 0, tzinfo=dt.UTC)
    wang = Customer.objects.get(shop=shop, platform_id="c2")
    assert (wang.first_name, wang.last_name, wang.marketing_state) == ("明", "王", "NOT_SUBSCRIBED")
    ploy = Customer.objects.get(shop=shop, platform_id="c1")
    assert ploy.first_name == "Ploy"  # details of the customer's latest order in the file
    assert ploy.marketing_state == "SUBSCRIBED"
    assert ploy.orders.count() == 2
    assert "3 orders (3 new)" in capsys.readouterr().out


def test_importing_the_same_file_twice_changes_nothing(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    run(path)
    before = snapshot()
    run(path)
    assert snapshot() == before
    assert "3 orders (0 new)" in capsys.readouterr().out.splitlines()[-1]
    assert Shop.objects.get(domain="old-store.example.com").timezone == "UTC"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "order_id,customer_id,email,created_at,total_price\n1,c,a@b.co,2025-01-01T00:00:00Z,1\n",
            "line 1: missing column(s) currency",
        ),
        (
            GOOD + "1004,c3,x@example.com,01/03/2025,10,USD,,,,,\n",
            "line 5: created_at '01/03/2025' is not an ISO 8601 time",
        ),
        (
            GOOD + "1004,c3,x@example.com,2025-03-01T00:00:00Z,12.3.4,USD,,,,,\n",
            "line 5: total_price '12.3.4' is not an amount",
        ),
        (
            GOOD + "1004,c3,x@example.com,2025-03-01T00:00:00Z,-5,USD,,,,,\n",
            "line 5: total_price '-5' is not an amount",
        ),
        (
            GOOD + "1004,c3,x@example.com,2025-03-01T00:00:00Z,5,XYZ,,,,,\n",
            "line 5: currency 'XYZ' is not an ISO 4217 code",
        ),
        (
            GOOD + "1004,c3,not-an-email,2025-03-01T00:00:00Z,5,USD,,,,,\n",
            "line 5: email 'not-an-email' is not an email",
        ),
        (
            GOOD + "1001,c1,ploy@example.co.th,2025-03-01T14:30:00+07:00,9.99,THB,,,,,\n",
            "line 5: order_id 1001 repeats line 2",
        ),
        ("", "line 1: the file is empty"),
    ],
    ids=[
        "missing-column",
        "bad-date",
        "bad-amount",
        "negative-amount",
        "bad-currency",
        "bad-email",
        "conflicting-dup",
        "empty",
    ],
)
def test_bad_file_names_the_line_and_imports_nothing(tmp_path, text, expected):
    with pytest.raises(CommandError) as excinfo:
        run(write(tmp_path, text))
    assert expected in str(excinfo.value)
    assert not Shop.objects.filter(domain="old-store.example.com").exists()
    assert Order.objects.count() == 0 and Customer.objects.count() == 0


def test_bad_row_after_good_rows_leaves_an_existing_shop_untouched(tmp_path, shop):
    call_command("import_orders", "--shop", shop.domain, write(tmp_path, GOOD))
    before = snapshot()
    with pytest.raises(CommandError, match="line 3: created_at"):
        call_command(
            "import_orders",
            "--shop",
            shop.domain,
            write(tmp_path, GOOD.replace("2025-03-02 09:00:00", "yesterday"), name="b.csv"),
        )
    assert snapshot() == before


def test_invalid_utf8_and_bad_timezone_are_reported(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        GOOD.replace("พลอย", "Zoë").encode("utf-8").replace("Zo\xc3\xab".encode("latin-1"), b"Zo\xeb")
    )
    with pytest.raises(CommandError, match="line 2: not UTF-8"):
        run(str(path))
    with pytest.raises(CommandError, match="not an IANA time zone"):
        run(write(tmp_path, GOOD), "--timezone", "Mars/Olympus")
    assert Order.objects.count() == 0
