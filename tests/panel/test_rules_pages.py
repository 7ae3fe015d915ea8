"""Rules pages: list, enable/pause, edit with errors next to fields, live preview, test-send, isolation."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from retention_app.automations.models import Rule
from retention_app.messaging.models import MessageTemplate
from tests.panel.test_panel import merchant

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel(shop):
    client = Client()
    merchant(shop)
    client.login(username="mai", password="s3cret-pass!")
    return client


def form_data(panel, rule, locale="en") -> dict:
    """The edit form as the browser would submit it (initial values)."""
    page = panel.get(f"/app/rules/{rule.pk}/?locale={locale}")
    form = page.context["form"]
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = str(value)
    return data


def test_rules_list_installs_defaults_and_toggles(panel, shop):
    page = panel.get("/app/rules/")
    assert page.status_code == 200
    keys = set(Rule.objects.filter(shop=shop).values_list("key", flat=True))
    assert {"thank_you", "order_confirmation", "shipping_update", "win_back"} <= keys
    rule = Rule.objects.get(shop=shop, key="thank_you")
    was = rule.enabled
    assert panel.post(f"/app/rules/{rule.pk}/toggle/").status_code == 302
    rule.refresh_from_db()
    assert rule.enabled is (not was)


def test_edit_saves_rule_conditions_and_template(panel, shop):
    panel.get("/app/rules/")
    rule = Rule.objects.get(shop=shop, key="order_confirmation")
    data = form_data(panel, rule)
    data.update(
        delay_minutes="45",
        cond_min_order_total="25.50",
        cond_customer_tags="vip, wholesale",
        discount_value="12",
        subject="Thanks {{ customer_first_name }}!",
    )
    response = panel.post(f"/app/rules/{rule.pk}/", data)
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    rule.refresh_from_db()
    assert rule.delay_minutes == 45
    assert rule.conditions["customer_tags"] == ["vip", "wholesale"]
    assert str(rule.conditions["min_order_total"]) in ("25.50", "25.5")
    assert str(rule.discount_value).startswith("12")
    template = MessageTemplate.objects.get(shop=shop, rule_key="order_confirmation", locale="en")
    assert template.subject == "Thanks {{ customer_first_name }}!"


def test_saving_unchanged_template_creates_no_override(panel, shop):
    panel.get("/app/rules/")
    rule = Rule.objects.get(shop=shop, key="thank_you")
    data = form_data(panel, rule, "th")
    data["delay_minutes"] = "31"
    assert panel.post(f"/app/rules/{rule.pk}/", data).status_code == 302
    assert not MessageTemplate.objects.filter(shop=shop).exists()


def _field_errors(html: str, field: str) -> str:
    """The text of the errorlist rendered right after the field's input."""
    match = re.search(
        rf'name="{field}"[^>]*>(?:[^<]*</textarea>)?\s*<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', html, re.S
    )
    return match.group(1) if match else ""


def test_validation_errors_next_to_fields_and_nothing_saved(panel, shop):
    panel.get("/app/rules/")
    rule = Rule.objects.get(shop=shop, key="order_confirmation")
    before = (rule.delay_minutes, rule.discount_value)
    data = form_data(panel, rule)
    data.update(discount_value_type="percentage", discount_value="150", delay_minutes="46")
    response = panel.post(f"/app/rules/{rule.pk}/", data)
    assert response.status_code == 200
    assert "at most 100" in _field_errors(response.content.decode(), "discount_value")
    rule.refresh_from_db()
    assert (rule.delay_minutes, rule.discount_value) == before
    # A template syntax error: shown next to the HTML body, the rule is not saved either.
    data.update(discount_value="10", html_body="<p>{% if %}</p>")
    response = panel.post(f"/app/rules/{rule.pk}/", data)
    assert response.status_code == 200
    assert _field_errors(response.content.decode(), "html_body")
    rule.refresh_from_db()
    assert rule.delay_minutes == before[0]
    # Conditions: min > max count is shown next to the max field.
    data.update(html_body="<p>Hi</p>", cond_min_order_count="5", cond_max_order_count="2")
    response = panel.post(f"/app/rules/{rule.pk}/", data)
    assert "max_order_count" in _field_errors(response.content.decode(), "cond_max_order_count")
    # Wrong types are caught by the form itself.
    data.update(cond_max_order_count="", delay_minutes="soon")
    response = panel.post(f"/app/rules/{rule.pk}/", data)
    assert _field_errors(response.content.decode(), "delay_minutes")


def test_live_preview(panel, shop):
    panel.get("/app/rules/")
    rule = Rule.objects.get(shop=shop, key="thank_you")
    ok = panel.post(
        f"/app/rules/{rule.pk}/preview/",
        {
            "locale": "en",
            "subject": "Hi {{ customer_first_name }}",
            "html_body": "<p>From {{ shop_name }}</p>",
        },
    ).json()
    assert ok["errors"] == [] and "Acme Tea" in ok["html"] and ok["subject"].startswith("Hi ")
    bad = panel.post(
        f"/app/rules/{rule.pk}/preview/", {"locale": "en", "subject": "x", "html_body": "{% for %}"}
    ).json()
    assert bad["errors"] and bad["errors"][0]["field"] == "html_body"


def test_test_send(panel, shop, mailoutbox):
    panel.get("/app/rules/")
    rule = Rule.objects.get(shop=shop, key="thank_you")
    response = panel.post(f"/app/rules/{rule.pk}/test-send/", {"to_email": "me@acme.example", "locale": "pl"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["me@acme.example"]
    assert mailoutbox[0].subject.startswith("[Test]")
    panel.post(f"/app/rules/{rule.pk}/test-send/", {"to_email": "not-an-email", "locale": "en"})
    assert len(mailoutbox) == 1


def test_rule_urls_are_isolated(panel, shop, other_shop):
    from retention_app.automations.services import rules_install_defaults

    rival = rules_install_defaults(shop=other_shop)[0]
    enabled = rival.enabled
    for method, url in [
        ("get", f"/app/rules/{rival.pk}/"),
        ("post", f"/app/rules/{rival.pk}/"),
        ("post", f"/app/rules/{rival.pk}/toggle/"),
        ("post", f"/app/rules/{rival.pk}/preview/"),
        ("post", f"/app/rules/{rival.pk}/test-send/"),
    ]:
        assert getattr(panel, method)(url).status_code == 404, url
    rival.refresh_from_db()
    assert rival.enabled == enabled
    assert f"/app/rules/{rival.pk}/" not in panel.get("/app/rules/").content.decode()
