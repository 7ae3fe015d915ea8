"""The panel in headless Chromium against a live server: log in, read the dashboard, change a rule and see
it take effect on the next order; screenshots (desktop and phone, two languages) in test-artifacts/panel/."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from retention_app.automations.models import Message, Rule
from retention_app.automations.services import rules_install_defaults
from retention_app.commerce.events import order_upserted
from retention_app.commerce.models import Order
from retention_app.panel.models import ShopMembership
from tests.conftest import requires_chromium
from tests.factories import CustomerFactory, OrderFactory

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "panel"
LAUNCH = {
    "executable_path": "/usr/bin/chromium",
    "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
}

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(headless=True, **LAUNCH)
        yield browser
        browser.close()


@pytest.fixture
def merchant_shop(shop):
    user = get_user_model().objects.create_user(username="mai", password="s3cret-pass!")
    ShopMembership.objects.create(user=user, shop=shop)
    rules_install_defaults(shop=shop)
    now = timezone.now()
    for i in range(12):
        customer = CustomerFactory(shop=shop, first_name=f"Customer{i}")
        for k in range(1 + i % 3):
            OrderFactory(shop=shop, customer=customer, placed_at=now - dt.timedelta(days=20 + 37 * k + 9 * i))
    return shop


def test_login_dashboard_and_rule_change_takes_effect(browser, live_server, merchant_shop):
    shop = merchant_shop
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/app/")
    assert "/app/login/" in page.url  # not logged in: sent to the login page
    page.fill("input[name=username]", "mai")
    page.fill("input[name=password]", "s3cret-pass!")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-metric=north-star]")
    assert page.locator("[data-table=cohorts] tr").count() > 1
    assert page.locator("svg.chart polyline").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "dashboard-desktop.png"), full_page=True)

    # Change the thank-you rule: 90 minutes after the order instead of 30; the live preview renders.
    page.click("text=Rules")
    page.click("tr[data-rule=thank_you] a")
    page.fill("input[name=delay_minutes]", "90")
    page.fill("input[name=subject]", "Thank you from {{ shop_name }}!")
    page.wait_for_function(
        "document.getElementById('preview-subject').textContent.startsWith('Thank you from')"
    )
    preview = page.frame_locator("#preview")
    assert "Acme Tea" in preview.locator("body").inner_text()
    page.screenshot(path=str(ARTIFACTS / "rule-edit.png"), full_page=True)
    page.click("#rule-form button[type=submit]")
    page.wait_for_selector("text=Rule saved.")
    # Pause the order confirmation rule from the list.
    page.click("text=Back to rules")
    page.click("tr[data-rule=order_confirmation] button")
    page.wait_for_selector("tr[data-rule=order_confirmation] .rule-status:has-text('Paused')")
    page.screenshot(path=str(ARTIFACTS / "rules.png"), full_page=True)

    # The next order (the event commerce sends after storing it) follows the new settings.
    customer = CustomerFactory(shop=shop, first_name="Newcomer")
    order = OrderFactory(shop=shop, customer=customer, placed_at=timezone.now())
    order_upserted.send(sender=Order, order=order, created=True, was_cancelled=False)
    messages = {m.rule.key: m for m in Message.objects.filter(order=order).select_related("rule")}
    assert "order_confirmation" not in messages  # paused
    assert messages["thank_you"].due_at == order.placed_at + dt.timedelta(minutes=90)
    assert Rule.objects.get(shop=shop, key="thank_you").delay_minutes == 90

    page.click("text=Messages")
    page.wait_for_selector("text=Newcomer")
    page.screenshot(path=str(ARTIFACTS / "messages.png"), full_page=True)

    # Phone size, Thai.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    phone.add_cookies(page.context.cookies())
    mobile = phone.new_page()
    mobile.goto(f"{live_server.url}/app/")
    mobile.select_option("select[name=language]", "th")
    mobile.wait_for_selector("text=แดชบอร์ด")
    assert mobile.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # no sideways page scroll
    mobile.screenshot(path=str(ARTIFACTS / "dashboard-phone-th.png"), full_page=True)
    phone.close()
