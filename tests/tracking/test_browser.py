"""Headless Chromium (system /usr/bin/chromium through Python Playwright) against live_server.

The page renders for every status, in every language, at phone (390x844) and desktop (1280x800) widths,
with screenshots in test-artifacts/tracking/ (gitignored); the lookup works with the right pair and says
the same thing for every wrong pair; a token for one shop's shipment never shows another's.
One browser per session, one context per test, one page load per case.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from django.utils import timezone, translation

from retention_app.tracking import presentation as P
from retention_app.tracking.services import tracking_page_path
from tests.conftest import requires_chromium
from tests.factories import LineItemFactory, OrderFactory, ProductFactory
from tests.tracking.conftest import add_event, make_shipment

pytestmark = [requires_chromium, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "tracking"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
STATUSES = ["", *[s.value for s in P.S], "CANCELLED"]


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test are still
    # synchronous (the live server runs in its own thread).
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page_factory(browser):
    contexts = []

    def make(viewport="desktop"):
        context = browser.new_context(viewport=VIEWPORTS[viewport])
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def _shipment_for(shop, status: str):
    f = make_shipment(
        shop,
        status="" if status == "CANCELLED" else status,
        items=("Jasmine green tea 100 g", "Bamboo whisk"),
        customer_kwargs={"timezone": "Asia/Bangkok"},
    )
    if status == "CANCELLED":
        f.status = "cancelled"
    f.estimated_delivery_at = timezone.now() + dt.timedelta(days=2)
    f.save()
    if status:
        add_event(f, "CONFIRMED", hours_ago=30, city="Warsaw")
        add_event(f, "IN_TRANSIT", hours_ago=20, city="Leipzig", message="Departed sorting hub")
        if status not in ("CONFIRMED", "IN_TRANSIT", "CANCELLED"):
            add_event(f, status, hours_ago=1, city="Bangkok")
    return f


@pytest.mark.parametrize("lang", list(P.SUPPORTED_LANGUAGES))
def test_page_renders_every_status_at_phone_and_desktop(live_server, page_factory, shop, lang):
    ProductFactory(shop=shop, platform_id="oolong", title="Oolong", handle="oolong")
    LineItemFactory(
        order=OrderFactory(shop=shop), product_platform_id="oolong", title="Oolong"
    )  # best seller
    shipments = {status or P.SHIPPED: _shipment_for(shop, status) for status in STATUSES}
    pages = {viewport: page_factory(viewport) for viewport in VIEWPORTS}
    for key, f in shipments.items():
        with translation.override(lang):
            expected = str(P.status_words(key))
            advice = str(P.PROBLEM_ADVICE[key]) if key in P.PROBLEM_ADVICE else None
        for viewport, page in pages.items():
            response = page.goto(f"{live_server.url}{tracking_page_path(f)}?lang={lang}")
            assert response.status == 200, (key, viewport)
            assert page.get_attribute("html", "lang") == lang
            assert page.inner_text("h1").strip() == expected, (key, viewport)
            assert page.locator("main").count() == 1 and page.locator("header").count() == 1
            if advice:
                assert advice in page.inner_text("main"), (key, viewport)
            assert page.locator("a[href*='/p/oolong/']").count() == 1  # a recommendation
            # Mobile-first: nothing wider than the screen.
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), viewport
            page.screenshot(
                path=str(ARTIFACTS / f"{lang}-{viewport}-{key.lower()}.png"), full_page=viewport == "phone"
            )


def test_lookup_right_pair_and_same_answer_for_wrong_pairs(live_server, page_factory, shop):
    f = make_shipment(shop, name="#5150", customer_kwargs={"email": "mai@example.com"})
    page = page_factory("phone")
    messages = set()
    for number, email in [
        ("#5150", "other@example.com"),
        ("#9999", "mai@example.com"),
        ("#1", "a@b.example"),
    ]:
        page.goto(f"{live_server.url}/t/lookup/{shop.domain}/")
        page.fill("#order_number", number)
        page.fill("#email", email)
        page.click("button[type=submit]")
        messages.add(page.inner_text("[role=alert]"))
    assert len(messages) == 1 and "could not find" in messages.pop()
    page.screenshot(path=str(ARTIFACTS / "lookup-wrong-pair.png"), full_page=True)
    page.fill("#order_number", "5150")
    page.fill("#email", "MAI@example.com")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{tracking_page_path(f)}")
    assert f.tracking_number in page.inner_text("main")


def test_token_of_one_shop_never_shows_another(live_server, page_factory, shop, other_shop):
    mine = make_shipment(shop, items=("Acme Sencha",))
    theirs = make_shipment(other_shop, items=("Rival Espresso",))
    page = page_factory("desktop")
    page.goto(f"{live_server.url}{tracking_page_path(mine)}")
    text = page.inner_text("body")
    assert "Acme Tea" in text and "Acme Sencha" in text
    assert "Rival" not in text and theirs.tracking_number not in text
    forged = tracking_page_path(theirs)[:-3] + "xx/"
    assert page.goto(f"{live_server.url}{forged}").status == 404
