"""Rendering of email templates: the sandbox, the default templates in every language, CSS inlining, the
text part and locale fallbacks."""

from __future__ import annotations

import datetime as dt
import http.server
import re
import threading
from decimal import Decimal

import pytest

from retention_app.messaging.locales import SUPPORTED_LOCALES, locale_normalize, locale_resolve
from retention_app.messaging.rendering import MessageTemplateError, email_render, html_to_text
from retention_app.messaging.selectors import DEFAULT_RULE_KEYS, message_template_default
from retention_app.messaging.services import (
    message_preview,
    message_render,
    message_template_reset,
    message_template_save,
    template_validate,
)
from retention_app.messaging.variables import SAMPLE_CONTEXT, VARIABLES, money_format, percent_format

FULL_CONTEXT = {
    **SAMPLE_CONTEXT,
    "customer_first_name": "Zofia",
    "customer_name": "Zofia Żółć",
    "order_total": "$54.00",
    "discount_code": "BACK-ZZ9QX2",
    "discount_value": "15%",
    "discount_expires_at": dt.datetime(2026, 12, 31, 12, 0, tzinfo=dt.UTC),
    "tracking_company": "Kerry Express",
    "tracking_number": "KEX0001",
    "tracking_url": "https://app.example/t/abc",
    "shipment_status": "OUT_FOR_DELIVERY",
}


def render_source(html_body: str, *, subject: str = "Hi", text_body: str = "", context=None):
    return email_render(
        subject=subject, html_body=html_body, text_body=text_body, context=context or {}, locale="en"
    )


# --- sandbox ----------------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''|attr('__class__') }}",
    "{{ (''|attr('__class__')|attr('__mro__'))[1] }}",
    "{{ settings }}",
    "{{ settings.SECRET_KEY }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ request }}",
    "{{ request.environ }}",
    "{{ self }}",
    "{{ self.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ range.__self__ }}",
    "{{ customer_first_name._private }}",
    "{{ customer_first_name.__len__() }}",
    "{{ '{0.__class__.__mro__}'.format(customer_first_name) }}",
    "{{ '{0.__class__}'.format(shop_name) }}",
    "{{ '%s'|format(shop_name.__class__) }}",
    "{{ shop_name|map(attribute='__class__')|list }}",
    "{% set x = namespace() %}{{ x }}",
    "{% for c in ''.__class__.__mro__[1].__subclasses__() %}{{ c }}{% endfor %}",
    "{{ shop_name.upper.__globals__ }}",
    "{{ shop_name.format_map(shop_name) }}",
]

DANGER = re.compile(
    r"(class|type|module|function|built-?in|SECRET|dev-only|mro|subclasses|globals|environ)", re.I
)


@pytest.mark.parametrize("payload", ESCAPES)
def test_sandbox_escape_renders_nothing_dangerous(payload, settings):
    """Either a clean template error, or output with no Python internals and no settings."""
    settings.SECRET_KEY = "super-secret-value-123"
    ctx = {**FULL_CONTEXT, "shop_name": "Acme"}
    try:
        rendered = render_source(f"<p>{payload}</p>", subject=payload, context=ctx)
    except MessageTemplateError as exc:
        assert exc.errors and exc.errors[0].field in {"subject", "html_body"}
        assert "super-secret-value-123" not in str(exc)
        return
    for part in (rendered.subject, rendered.html, rendered.text):
        assert "super-secret-value-123" not in part
        body = part.split("<body", 1)[-1] if part is rendered.html else part
        assert not DANGER.search(re.sub(r'class="[^"]*"', "", body)), body[:500]


@pytest.mark.parametrize(
    "tag",
    [
        "{% include 'base.html' %}",
        "{% import 'x.html' as x %}",
        "{% extends 'a' %}",
        "{% from '/etc/passwd' import x %}",
        "{% include '/etc/passwd' %}",
    ],
)
def test_templates_cannot_read_other_templates_or_files(tag):
    with pytest.raises(MessageTemplateError) as info:
        render_source(f"<p>{tag}</p>")
    assert "root:" not in str(info.value)
    errors = template_validate(subject="Hi", html_body=f"<p>{tag}</p>")
    assert any("include or import" in e.message or "not found" in e.message.lower() for e in errors)


def test_memory_bombs_are_refused():
    with pytest.raises(MessageTemplateError):
        render_source("{{ 'x' * 100000000 }}")
    with pytest.raises(MessageTemplateError):
        render_source("{{ 9 ** 999999 }}")
    assert "xxxx" in render_source("{{ 'x' * 4 }}").html


def test_output_size_is_bounded():
    loop = "{% for a in 'x' * 9000 %}{{ shop_name * 100 }}{% endfor %}"
    with pytest.raises(MessageTemplateError, match="longer than"):
        render_source(loop, context={"shop_name": "Acme"})
    errors = template_validate(subject="Hi", html_body="<p>x</p>" * 20000)
    assert errors and errors[0].message.startswith("Too long")


@pytest.mark.parametrize(
    "source",
    [
        "{% for a in 'x' * 9999 %}{% for b in 'x' * 9999 %}{% endfor %}{% endfor %}",
        "{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}",
        "{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}x{% endcall %}",
        "{% for a in shop_name recursive %}{{ loop(a) }}{% endfor %}",
    ],
)
def test_cpu_bombs_are_refused_before_running(source):
    """Nested loops, macros and recursive loops could keep a worker busy for minutes: refused up front."""
    with pytest.raises(MessageTemplateError, match="not allowed"):
        render_source(source, context={"shop_name": "Acme"})
    errors = template_validate(subject="Hi", html_body=source)
    assert any("not allowed" in e.message and e.line == 1 for e in errors)


def test_context_objects_never_reach_the_template(shop):
    """Even if a caller passed a model instance, the template only sees its string form."""
    rendered = render_source(
        "<p>{{ shop_name.pk }}|{{ shop_name.objects }}|{{ shop_name }}</p>",
        context={"shop_name": shop, "evil": shop},
    )
    assert str(shop.pk) + "|" not in rendered.html.split("<body", 1)[1]
    assert "acme.myshopify.com" in rendered.html


def test_html_is_autoescaped_and_subject_cannot_inject_headers():
    rendered = render_source(
        "<p>{{ customer_first_name }}</p>",
        subject="Hi {{ customer_first_name }}\r\nBcc: victim@example.com",
        context={"customer_first_name": "<script>alert(1)</script>\nBcc: x@example.com"},
    )
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_remote_stylesheets_are_never_fetched():
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"p { color: red; }")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/steal.css"
        rendered = render_source(
            f'<html><head><link rel="stylesheet" href="{url}"><style>@import url("{url}");</style></head>'
            "<body><p>Hello</p></body></html>"
        )
    finally:
        server.shutdown()
    assert hits == []
    assert "color: red" not in rendered.html


# --- validation -------------------------------------------------------------------------------------


def test_validate_reports_syntax_error_with_line_number():
    errors = template_validate(subject="Hi", html_body="<p>ok</p>\n<p>{% if x %}</p>\n")
    assert len(errors) == 1
    assert errors[0].field == "html_body"
    assert errors[0].line is not None and errors[0].line >= 2


def test_validate_reports_unknown_variables_with_lines():
    errors = template_validate(
        subject="Hi {{ customer_first_name }}",
        html_body="<p>{{ shop_name }}</p>\n<p>{{ cusomer_name }}</p>",
        text_body="{{ secret }}",
    )
    found = {(e.field, e.line, e.message) for e in errors}
    assert ("html_body", 2, "Unknown variable 'cusomer_name'") in found
    assert ("text_body", 1, "Unknown variable 'secret'") in found
    assert all(e.as_dict()["field"] for e in errors)


def test_validate_accepts_every_documented_variable_and_loop_variables():
    body = "".join(f"<p>{{{{ {name} }}}}</p>" for name in VARIABLES)
    body += (
        "{% set greeting = 'Hi' %}{{ greeting }}{% for ch in shop_name %}{{ ch }}{{ loop.index }}{% endfor %}"
    )
    assert template_validate(subject="{{ shop_name }}", html_body=body) == []


def test_validate_refuses_private_attributes_and_requires_fields():
    errors = template_validate(subject="", html_body="{{ shop_name._x }}")
    messages = {e.message for e in errors}
    assert "The subject is required" in messages
    assert "Attribute '_x' is not allowed" in messages


def test_message_template_save_validates_and_reset_restores_default(shop):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as info:
        message_template_save(shop=shop, rule_key="thank_you", locale="en", subject="Hi", html_body="{{ oops")
    assert "html_body" in info.value.message_dict
    message_template_save(
        shop=shop,
        rule_key="thank_you",
        locale="en-US",
        subject="Thanks {{ customer_first_name }}",
        html_body="<p>Custom {{ shop_name }}</p>",
    )
    rendered = message_render(
        shop=shop, rule_key="thank_you", locale="en", context={"customer_first_name": "Jo"}
    )
    assert rendered.subject == "Thanks Jo"
    assert "Custom Acme Tea" in rendered.html
    assert message_template_reset(shop=shop, rule_key="thank_you", locale="en") is True
    rendered = message_render(
        shop=shop, rule_key="thank_you", locale="en", context={"customer_first_name": "Jo"}
    )
    assert "Custom" not in rendered.html


def test_preview_shows_template_errors_and_uses_the_shops_name(shop):
    rendered = message_preview(
        shop=shop,
        rule_key="thank_you",
        locale="en",
        subject="{{ shop_name }}",
        html_body="<p>{{ discount_code }}</p>",
    )
    assert rendered.subject == "Acme Tea"
    assert "BACK-7QX2KD" in rendered.html
    with pytest.raises(MessageTemplateError) as info:
        message_preview(
            shop=shop,
            rule_key="thank_you",
            locale="en",
            subject="x",
            html_body="{{ ''.__class__.__mro__[1].__subclasses__() }}",
        )
    assert info.value.errors[0].field == "html_body"


# --- default templates ------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("rule_key", DEFAULT_RULE_KEYS)
def test_every_default_renders_with_every_variable(rule_key, locale, shop):
    source = message_template_default(rule_key, locale)
    assert source is not None and source.locale == locale
    assert (
        template_validate(subject=source.subject, html_body=source.html_body, text_body=source.text_body)
        == []
    )
    rendered = message_render(shop=shop, rule_key=rule_key, locale=locale, context=FULL_CONTEXT)
    for part in (rendered.subject, rendered.html, rendered.text):
        assert "{{" not in part and "{%" not in part and "}}" not in part
        assert part.strip()
    assert f'lang="{locale}"' in rendered.html
    assert "<style" not in rendered.html.split("<body", 1)[1]  # CSS moved into attributes
    assert 'style="' in rendered.html
    assert "Zofia" in rendered.html and "Zofia" in rendered.text
    if rule_key == "shipping_update":
        assert "KEX0001" in rendered.html and "https://app.example/t/abc" in rendered.html
        assert "OUT_FOR_DELIVERY" not in rendered.html + rendered.subject
    else:
        assert "BACK-ZZ9QX2" in rendered.html and "BACK-ZZ9QX2" in rendered.text
        assert "2026" in rendered.html or "2569" in rendered.html  # expiry date (Thai: Buddhist era)
    if rule_key == "thank_you":
        assert "Mai" in rendered.html  # signed by the owner
    if rule_key in ("order_confirmation", "win_back"):
        assert FULL_CONTEXT["discount_url"] in rendered.html


@pytest.mark.parametrize("rule_key", DEFAULT_RULE_KEYS)
def test_defaults_render_with_an_empty_context(rule_key, shop):
    """A customer without a name, an order without a code: still a sensible email."""
    rendered = message_render(shop=shop, rule_key=rule_key, locale="pl", context={})
    assert "{{" not in rendered.html
    assert rendered.subject.strip()


def test_default_texts_are_written_in_their_language(shop):
    def html(rule, loc):
        return message_render(shop=shop, rule_key=rule, locale=loc, context=FULL_CONTEXT).html

    assert "ขอบคุณ" in html("thank_you", "th")
    assert "Cảm ơn" in html("order_confirmation", "vi")
    assert "Dziękujemy za zamówienie" in html("order_confirmation", "pl")
    assert "Wydana do doręczenia" in html("shipping_update", "pl")
    assert "配送中" in html("shipping_update", "zh-hant")
    assert "想念您" in html("win_back", "zh-hant")
    assert "31 grudnia 2026" in html("win_back", "pl")
    assert "31 ธันวาคม 2569" in html("win_back", "th")


def test_unsubscribe_footer_only_when_a_link_is_given(shop):
    with_link = message_render(shop=shop, rule_key="win_back", locale="en", context=FULL_CONTEXT)
    assert (
        FULL_CONTEXT["unsubscribe_url"] in with_link.html
        and FULL_CONTEXT["unsubscribe_url"] in with_link.text
    )
    ctx = {k: v for k, v in FULL_CONTEXT.items() if k != "unsubscribe_url"}
    transactional = message_render(shop=shop, rule_key="shipping_update", locale="en", context=ctx)
    assert "Unsubscribe" not in transactional.html


# --- text part --------------------------------------------------------------------------------------


def test_text_part_generated_from_html_with_links():
    text = html_to_text(
        "<style>p{color:red}</style><p>Hello &amp; welcome</p>"
        "<p><a href='https://x.example/d'>Use code</a></p>"
        "<ul><li>one</li><li>two</li></ul>"
    )
    assert "color:red" not in text
    assert "Hello & welcome" in text
    assert "Use code: https://x.example/d" in text
    assert "- one" in text and "- two" in text


def test_merchant_text_body_is_used_when_written(shop):
    message_template_save(
        shop=shop,
        rule_key="win_back",
        locale="en",
        subject="S",
        html_body="<p>H</p>",
        text_body="Plain {{ customer_first_name }} <b>kept</b>",
    )
    rendered = message_render(
        shop=shop, rule_key="win_back", locale="en", context={"customer_first_name": "A&B"}
    )
    assert rendered.text.strip() == "Plain A&B <b>kept</b>"  # no HTML escaping in the text part


# --- locales ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("zh-TW", "zh-hant"),
        ("zh_Hant", "zh-hant"),
        ("zh-tw", "zh-hant"),
        ("zh-Hant-HK", "zh-hant"),
        ("zh-HK", "zh-hant"),
        ("th-TH", "th"),
        ("TH", "th"),
        ("vi_VN", "vi"),
        ("pl-PL", "pl"),
        ("en-GB", "en"),
        ("zh-CN", None),
        ("de", None),
        ("", None),
        (None, None),
    ],
)
def test_locale_normalize(raw, expected):
    assert locale_normalize(raw) == expected


def test_locale_fallback_customer_then_shop_then_english(shop):
    shop.primary_locale = "th"
    assert locale_resolve(customer_locale="pl-PL", shop=shop) == "pl"
    assert locale_resolve(customer_locale="de-DE", shop=shop) == "th"
    assert locale_resolve(customer_locale="", shop=shop) == "th"
    shop.primary_locale = "fr"
    assert locale_resolve(customer_locale="", shop=shop) == "en"
    shop.primary_locale = "zh-TW"
    shop.save()
    rendered = message_render(shop=shop, rule_key="shipping_update", locale="xx", context=FULL_CONTEXT)
    assert 'lang="zh-hant"' in rendered.html


def test_merchant_template_only_for_its_own_shop(shop, other_shop):
    message_template_save(
        shop=shop, rule_key="win_back", locale="en", subject="Acme only", html_body="<p>A</p>"
    )
    theirs = message_render(shop=other_shop, rule_key="win_back", locale="en", context={})
    assert theirs.subject != "Acme only"


def test_money_and_percent_formatting():
    assert money_format(Decimal("54"), "USD") == "$54.00"
    assert money_format(Decimal("1250.5"), "THB", "th") == "฿1,250.50"
    assert money_format(Decimal("1234.5"), "PLN", "pl") == "1\u00a0234,50\u00a0zł"
    assert money_format(Decimal("150000"), "VND", "vi") == "150.000\u00a0₫"
    assert money_format(Decimal("10"), "CHF") == "10.00 CHF"
    assert percent_format(Decimal("15.00")) == "15%"
    assert percent_format(Decimal("12.50")) == "12.5%"


def test_expiry_datetime_is_written_as_the_shops_local_date(shop):
    shop.timezone = "America/New_York"
    expires = dt.datetime(2026, 12, 24, 3, 0, tzinfo=dt.UTC)  # still Dec 23 in New York
    ctx = {**FULL_CONTEXT, "discount_expires_at": expires}
    assert (
        "December 23, 2026" in message_render(shop=shop, rule_key="win_back", locale="en", context=ctx).html
    )
    shop.timezone = "Asia/Bangkok"
    assert "24 ธันวาคม 2569" in message_render(shop=shop, rule_key="win_back", locale="th", context=ctx).html
    shop.timezone = "Not/AZone"
    assert (
        "December 24, 2026" in message_render(shop=shop, rule_key="win_back", locale="en", context=ctx).html
    )


def test_shop_url_falls_back_to_the_store_address(shop, settings):
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"
    shop.storefront_url = ""
    rendered = message_render(shop=shop, rule_key="win_back", locale="en", context={})
    assert 'href="https://acme.myshopify.com"' in rendered.html  # the "come back" button
