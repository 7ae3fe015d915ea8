"""The public page through Django's test client: tokens, tenant isolation, content, time zones, redirects."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core import signing
from django.utils import timezone

from retention_app.commerce.models import FulfillmentEvent
from retention_app.tracking.models import TrackingClick, TrackingLink, TrackingPageView
from retention_app.tracking.selectors import same_store_url
from retention_app.tracking.services import (
    public_id_from_token,
    tracking_branding_update,
    tracking_customer_recs_invalidate,
    tracking_page_path,
    tracking_page_url,
)
from tests.factories import LineItemFactory, OrderFactory, ProductFactory
from tests.tracking.conftest import add_event, changed, flush_views, make_shipment

pytestmark = pytest.mark.django_db


def page(client, fulfillment, query=""):
    return client.get(tracking_page_path(fulfillment) + query)


class TestTokens:
    def test_url_is_absolute_signed_and_stable(self, settings, shipment):
        settings.APP_URL = "https://boomerang.example"
        url = tracking_page_url(shipment)
        assert url.startswith("https://boomerang.example/t/")
        assert url == tracking_page_url(shipment)
        token = url.rsplit("/t/", 1)[1].strip("/")
        link = TrackingLink.objects.get(fulfillment=shipment)
        assert public_id_from_token(token) == link.public_id
        assert not link.public_id.isdigit() and len(link.public_id) >= 20
        other = make_shipment(shipment.shop)
        assert TrackingLink.objects.get(fulfillment=other).public_id if tracking_page_path(other) else None
        assert TrackingLink.objects.get(fulfillment=other).public_id != link.public_id

    def test_tampered_or_unsigned_token_is_404(self, client, shipment):
        token = tracking_page_path(shipment).split("/")[2]
        public_id = TrackingLink.objects.get(fulfillment=shipment).public_id
        for bad in (
            public_id,
            token[:-2] + "xx",
            signing.Signer(salt="other").sign(public_id),
            "1",
            "x" * 300,
        ):
            assert client.get(f"/t/{bad}/").status_code == 404, bad
        assert client.get(f"/t/{token}/").status_code == 200

    def test_one_link_per_fulfillment(self, shipment):
        tracking_page_path(shipment)
        tracking_page_path(shipment)
        assert TrackingLink.objects.filter(fulfillment=shipment).count() == 1


class TestTenantIsolation:
    def test_token_of_one_shop_never_shows_another(self, client, shop, other_shop):
        mine = make_shipment(shop, items=("Acme Sencha",))
        theirs = make_shipment(other_shop, items=("Rival Espresso",))
        ProductFactory(shop=other_shop, platform_id=f"{other_shop.pk}-p9", title="Rival Beans")
        LineItemFactory(order=theirs.order, title="Rival Beans", product_platform_id=f"{other_shop.pk}-p9")

        body = page(client, mine).content.decode()
        assert "Acme Tea" in body and "Acme Sencha" in body and mine.tracking_number in body
        assert "Rival" not in body and theirs.tracking_number not in body

        body = page(client, theirs).content.decode()
        assert "Rival Espresso" in body and "Acme" not in body

    def test_product_redirect_refuses_another_shops_product(self, client, shop, other_shop):
        mine = make_shipment(shop)
        rival_product = ProductFactory(shop=other_shop, platform_id="rival-1")
        token = tracking_page_path(mine).split("/")[2]
        assert client.get(f"/t/{token}/p/{rival_product.platform_id}/").status_code == 404
        assert TrackingClick.objects.count() == 0

    def test_link_pointing_at_mismatched_shop_is_404(self, client, shop, other_shop):
        mine = make_shipment(shop)
        path = tracking_page_path(mine)
        TrackingLink.objects.filter(fulfillment=mine).update(shop=other_shop)
        assert client.get(path).status_code == 404


class TestContent:
    def test_status_items_carrier_and_headers(self, client, shipment):
        r = page(client, shipment)
        body = r.content.decode()
        assert r.status_code == 200
        assert '<html lang="en">' in body
        assert "<h1" in body and "In transit" in body and "Green tea" in body
        assert 'href="https://carrier.example/track?n=1"' in body
        assert r["Referrer-Policy"] == "no-referrer"
        assert "no-store" in r["Cache-Control"]
        assert "<main" in body and "<header" in body and "<footer" in body

    def test_unsafe_carrier_url_is_not_linked(self, client, shipment):
        shipment.tracking_url = "javascript:alert(1)"
        shipment.save()
        body = page(client, shipment).content.decode()
        assert "javascript:" not in body and shipment.tracking_number in body

    @pytest.mark.parametrize(
        ("status", "advice"),
        [
            ("FAILURE", "Contact the store with your order number"),
            ("ATTEMPTED_DELIVERY", "tries again on the next business day"),
            ("DELAYED", "Nothing to do for now"),
        ],
    )
    def test_delivery_problem_explained(self, client, shop, status, advice):
        body = page(client, make_shipment(shop, status=status)).content.decode()
        assert "What to do next" in body and advice in body

    def test_no_problem_section_when_in_transit(self, client, shipment):
        assert "What to do next" not in page(client, shipment).content.decode()

    def test_eta_shown_then_hidden_when_delivered_or_past(self, client, shop):
        f = make_shipment(shop)
        f.estimated_delivery_at = timezone.now() + dt.timedelta(days=3)
        f.save()
        assert "Estimated delivery" in page(client, f).content.decode()
        f.estimated_delivery_at = timezone.now() - dt.timedelta(hours=2)
        f.save()
        changed(f)
        assert "Estimated delivery" not in page(client, f).content.decode()
        f.estimated_delivery_at = timezone.now() + dt.timedelta(days=3)
        f.shipment_status = "DELIVERED"
        f.save()
        changed(f)
        assert "Estimated delivery" not in page(client, f).content.decode()

    def test_new_events_show_as_soon_as_commerce_announces_them(self, client, shipment):
        add_event(shipment, "IN_TRANSIT", hours_ago=5, message="Departed hub")
        assert "Departed hub" in page(client, shipment).content.decode()
        status_before = client.get(tracking_page_path(shipment) + "status.json").json()["v"]
        add_event(shipment, "OUT_FOR_DELIVERY", hours_ago=1, message="With courier")
        assert "With courier" not in page(client, shipment).content.decode()  # served from the cache
        changed(shipment)  # fulfillment_upserted, sent on commit by commerce
        body = page(client, shipment).content.decode()
        assert "With courier" in body and body.index("With courier") < body.index("Departed hub")
        assert client.get(tracking_page_path(shipment) + "status.json").json()["v"] != status_before


class TestTimezones:
    def _event_at(self, f, when):
        FulfillmentEvent.objects.create(
            shop=f.shop, fulfillment=f, platform_id="e1", status="IN_TRANSIT", happened_at=when
        )

    def test_customer_timezone_wins(self, client, shop):
        shop.timezone = "America/New_York"
        shop.save()
        f = make_shipment(shop, customer_kwargs={"timezone": "Asia/Bangkok"})
        self._event_at(f, dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC))
        body = page(client, f).content.decode()
        assert "Jan. 1, 2026, 7 a.m." in body and "Asia/Bangkok" in body

    def test_shop_timezone_when_customer_unknown(self, client, shop):
        shop.timezone = "America/New_York"
        shop.save()
        f = make_shipment(shop, customer_kwargs={"timezone": ""})
        self._event_at(f, dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC))
        body = page(client, f).content.decode()
        assert "Dec. 31, 2025, 7 p.m." in body and "America/New_York" in body


class TestLanguage:
    def test_customer_locale_then_lang_override(self, client, shop):
        f = make_shipment(shop, status="DELIVERED", customer_kwargs={"locale": "pl-PL"})
        r = page(client, f)
        assert r["Content-Language"] == "pl" and '<html lang="pl">' in r.content.decode()
        assert "Doręczona" in r.content.decode()
        r = page(client, f, "?lang=zh-hant")
        assert '<html lang="zh-hant">' in r.content.decode() and "已送達" in r.content.decode()
        r = page(client, f, "?lang=klingon")
        assert r["Content-Language"] == "pl"


class TestBranding:
    def test_update_validates_and_normalizes(self, shop):
        b = tracking_branding_update(
            shop=shop, data={"brand_color": "#ABC", "logo_url": "https://cdn.example/logo.png"}
        )
        assert b.brand_color == "#aabbcc" and b.logo_url == "https://cdn.example/logo.png"
        b = tracking_branding_update(shop=shop, data={"accent_color": "#112233"})
        assert b.brand_color == "#aabbcc" and b.accent_color == "#112233"

    @pytest.mark.parametrize(
        "data",
        [
            {"brand_color": "red"},
            {"accent_color": "#12345"},
            {"background_color": "#fff;} body{display:none"},
            {"logo_url": "http://cdn.x/logo.png"},
            {"logo_url": "javascript:alert(1)"},
        ],
    )
    def test_bad_input_is_rejected_with_message(self, shop, data):
        from django.core.exceptions import ValidationError

        with pytest.raises(ValidationError) as exc:
            tracking_branding_update(shop=shop, data=data)
        assert set(exc.value.message_dict) == set(data)

    def test_page_uses_new_branding_after_update(
        self, client, shop, shipment, django_capture_on_commit_callbacks
    ):
        assert "#ffff00" not in page(client, shipment).content.decode()
        with django_capture_on_commit_callbacks(execute=True):
            tracking_branding_update(
                shop=shop,
                data={
                    "brand_color": "#ffff00",
                    "accent_color": "#ffff00",
                    "logo_url": "https://cdn.example/l.png",
                },
            )
        body = page(client, shipment).content.decode()
        assert "--hbg:#ffff00" in body and "--hfg:#111827" in body  # dark text on yellow
        assert "--ac:#ffff00" not in body  # accent darkened for contrast on white cards
        assert '<img src="https://cdn.example/l.png" alt="Acme Tea">' in body


class TestRecommendationsAndRedirects:
    @pytest.fixture
    def catalog(self, shop, other_shop):
        """Products a..e; 'b' often bought with the ordered 'a'; 'e' the best seller; 'c' bought before."""
        p = {
            k: ProductFactory(shop=shop, platform_id=f"p-{k}", title=f"Tea {k.upper()}", handle=f"tea-{k}")
            for k in "abcde"
        }
        ProductFactory(shop=other_shop, platform_id="p-x", title="Rival Thing")
        for _ in range(2):
            o = OrderFactory(shop=shop)
            LineItemFactory(order=o, product_platform_id="p-a", title="Tea A")
            LineItemFactory(order=o, product_platform_id="p-b", title="Tea B")
        o = OrderFactory(shop=shop)
        LineItemFactory(order=o, product_platform_id="p-e", title="Tea E", quantity=20)
        other = OrderFactory(shop=other_shop)
        LineItemFactory(order=other, product_platform_id="p-x", title="Rival Thing", quantity=99)
        LineItemFactory(order=other, product_platform_id="p-a", title="Tea A")
        return p

    def test_bought_together_first_then_best_sellers_excluding_purchased(self, client, shop, catalog):
        f = make_shipment(shop, items=())
        LineItemFactory(order=f.order, product_platform_id="p-a", title="Tea A")
        earlier = OrderFactory(shop=shop, customer=f.order.customer)
        LineItemFactory(order=earlier, product_platform_id="p-c", title="Tea C")
        from retention_app.tracking.selectors import recommendations_compute

        titles = [r["title"] for r in recommendations_compute(order=f.order)]
        assert titles[:2] == ["Tea B", "Tea E"]
        assert "Tea A" not in titles and "Tea C" not in titles and "Rival Thing" not in titles
        body = page(client, f).content.decode()
        assert "You might also like" in body and "Tea B" in body

    def test_product_click_redirects_to_own_store_and_counts(self, client, shop, catalog):
        f = make_shipment(shop)
        token = tracking_page_path(f).split("/")[2]
        catalog["b"].url = "https://evil.example/products/tea-b"
        catalog["b"].save()
        r = client.get(f"/t/{token}/p/p-b/?next=https://evil.example/")
        assert r.status_code == 302 and r["Location"] == "https://acme.myshopify.com/products/tea-b"
        catalog["b"].url = "https://acme.myshopify.com/products/tea-b?variant=1"
        catalog["b"].save()
        assert (
            client.get(f"/t/{token}/p/p-b/")["Location"]
            == "https://acme.myshopify.com/products/tea-b?variant=1"
        )
        click = TrackingClick.objects.get(pk=TrackingClick.objects.latest("id").pk)
        assert click.kind == "recommendation" and click.customer_id == f.order.customer_id
        assert TrackingClick.objects.count() == 2

    def test_code_section_and_redirect(self, client, shop, monkeypatch):
        code = SimpleNamespace(
            code="BACK-7QX2",
            url="https://evil.example/discount/BACK-7QX2",
            expires_at=timezone.now() + dt.timedelta(days=30),
        )
        monkeypatch.setattr("retention_app.tracking.views.unused_discount_code", lambda customer: code)
        f = make_shipment(shop)
        token = tracking_page_path(f).split("/")[2]
        body = page(client, f).content.decode()
        assert "BACK-7QX2" in body and f"/t/{token}/code/" in body and "Valid until" in body
        r = client.get(f"/t/{token}/code/?url=https://evil.example")
        assert r["Location"] == "https://acme.myshopify.com/discount/BACK-7QX2"
        assert TrackingClick.objects.get().discount_code == "BACK-7QX2"

    def test_customers_real_unused_code_is_shown_and_used_ones_are_not(self, client, shop, other_shop):
        from retention_app.discounts.models import DiscountCode

        f = make_shipment(shop)
        customer = f.order.customer

        def code(code, **kwargs):
            return DiscountCode.objects.create(
                shop=kwargs.pop("shop", shop),
                customer=kwargs.pop("customer", customer),
                rule_key="order_confirmation",
                trigger_key=code,
                code=code,
                value_type="percentage",
                value=Decimal("10"),
                currency="USD",
                starts_at=timezone.now() - dt.timedelta(days=1),
                status=kwargs.pop("status", "active"),
                **kwargs,
            )

        code("USED-1", status="redeemed", redeemed_at=timezone.now())
        code("OLD-1", expires_at=timezone.now() - dt.timedelta(days=1))
        code("RIVAL-1", shop=other_shop, customer=make_shipment(other_shop).order.customer)
        body = page(client, f).content.decode()
        assert "A gift for your next order" not in body and "RIVAL-1" not in body and "USED-1" not in body
        code("BACK-NEW1", expires_at=timezone.now() + dt.timedelta(days=20))
        tracking_customer_recs_invalidate(customer_id=customer.pk)  # what a new order does
        body = page(client, f).content.decode()
        assert "BACK-NEW1" in body
        token = tracking_page_path(f).split("/")[2]
        assert client.get(f"/t/{token}/code/")["Location"] == "https://acme.myshopify.com/discount/BACK-NEW1"

    def test_no_code_means_no_section_and_redirect_home(self, client, shipment):
        token = tracking_page_path(shipment).split("/")[2]
        assert "A gift for your next order" not in page(client, shipment).content.decode()
        assert client.get(f"/t/{token}/code/")["Location"] == "https://acme.myshopify.com/"
        assert TrackingClick.objects.count() == 0


@pytest.mark.parametrize(
    ("storefront", "url", "allowed"),
    [
        ("https://acme.com", "https://acme.com/products/x", True),
        ("https://acme.com", "https://ACME.com/discount/C", True),
        ("https://acme.com", "https://acme.com.evil.com/x", False),
        ("https://acme.com", "https://acme.com@evil.com/x", False),
        ("https://acme.com", "https://evil.com/?https://acme.com", False),
        ("https://acme.com", "javascript://acme.com/%0aalert(1)", False),
        ("https://acme.com", "//acme.com/x", False),
        ("https://acme.com", "https://acme.com:8443/x", False),
        (
            "http://127.0.0.1:8100/s/acme.devstore.test",
            "http://127.0.0.1:8100/s/acme.devstore.test/products/x",
            True,
        ),
        (
            "http://127.0.0.1:8100/s/acme.devstore.test",
            "http://127.0.0.1:8100/s/rival.devstore.test/products/x",
            False,
        ),
    ],
)
def test_same_store_url(storefront, url, allowed):
    shop = SimpleNamespace(storefront_url=storefront, domain="acme.myshopify.com")
    assert (same_store_url(shop, url) is not None) is allowed


def test_cached_page_costs_no_query_but_the_view_record(
    client, shipment, django_assert_num_queries, settings
):
    path = tracking_page_path(shipment)
    first = client.get(path).content
    with django_assert_num_queries(0 if settings.REDIS_URL else 1):  # a buffered view, or its INSERT
        assert client.get(path).content == first


def test_page_view_is_one_row_with_hashed_visitor(client, shipment):
    page(client, shipment)
    page(client, shipment)
    flush_views()
    views = list(TrackingPageView.objects.all())
    assert len(views) == 2 and views[0].visitor_hash == views[1].visitor_hash
    assert re.fullmatch(r"[0-9a-f]{32}", views[0].visitor_hash) and "127.0.0.1" not in views[0].visitor_hash


def test_process_local_layer_serves_repeat_views_and_drops_on_change(client, shipment, settings):
    """Production keeps a page per process for TRACKING_PAGE_LOCAL_CACHE_SECONDS; a change announced in
    this process drops it at once (other processes within those seconds)."""
    settings.TRACKING_PAGE_LOCAL_CACHE_SECONDS = 30
    path = tracking_page_path(shipment)
    client.get(path)
    add_event(shipment, "DELIVERED", hours_ago=0, message="Left at the door")
    assert "Left at the door" not in client.get(path).content.decode()
    changed(shipment)
    assert "Left at the door" in client.get(path).content.decode()
    flush_views()
    assert TrackingPageView.objects.count() == 3
