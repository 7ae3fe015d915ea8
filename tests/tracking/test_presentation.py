"""Pure rules: status words (in every language), ETA hiding, time zones, languages, colour contrast."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.utils import translation

from retention_app.commerce.models import Fulfillment
from retention_app.tracking import presentation as P

S = Fulfillment.ShipmentStatus
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def ful(shipment_status="", status="success", eta=None, delivered_at=None):
    return SimpleNamespace(
        shipment_status=shipment_status, status=status, estimated_delivery_at=eta, delivered_at=delivered_at
    )


@pytest.mark.parametrize(
    ("shipment_status", "status", "expected"),
    [
        ("IN_TRANSIT", "success", S.IN_TRANSIT),
        ("", "success", P.SHIPPED),
        ("", "open", P.SHIPPED),
        ("IN_TRANSIT", "cancelled", P.CANCELLED),
        ("DELIVERED", "cancelled", S.DELIVERED),
        ("SOMETHING_NEW", "success", P.SHIPPED),
    ],
)
def test_display_status(shipment_status, status, expected):
    assert P.display_status(ful(shipment_status, status)) == expected


@pytest.mark.parametrize("lang", ["th", "vi", "pl", "zh-hant"])
def test_every_status_word_sentence_and_advice_is_translated(lang):
    with translation.override("en"):
        english = {k: (str(P.status_words(k)), str(P.status_sentence(k))) for k in P.STATUS_WORDS}
        advice_en = {k: str(v) for k, v in P.PROBLEM_ADVICE.items()}
    with translation.override(lang):
        for key, (word, sentence) in english.items():
            assert str(P.status_words(key)) != word, (lang, key)
            assert str(P.status_sentence(key)) != sentence, (lang, key)
        for key, text in advice_en.items():
            assert str(P.PROBLEM_ADVICE[key]) != text, (lang, key)


def test_known_translations():
    expected = {
        "th": "จัดส่งสำเร็จ",
        "vi": "Đã giao hàng",
        "pl": "Doręczona",
        "zh-hant": "已送達",
        "en": "Delivered",
    }
    for lang, word in expected.items():
        with translation.override(lang):
            assert str(P.status_words(S.DELIVERED)) == word


def test_problem_statuses_have_advice_and_others_do_not():
    assert set(P.PROBLEM_ADVICE) == {S.FAILURE, S.ATTEMPTED_DELIVERY, S.DELAYED}


class TestEstimatedDelivery:
    @pytest.mark.parametrize("status", ["IN_TRANSIT", "DELAYED", "ATTEMPTED_DELIVERY", ""])
    def test_shown_when_in_future(self, status):
        eta = NOW + dt.timedelta(days=2)
        assert P.estimated_delivery(ful(status, eta=eta), [], now=NOW) == eta

    def test_hidden_when_past_due(self):
        assert P.estimated_delivery(ful("IN_TRANSIT", eta=NOW - dt.timedelta(hours=1)), [], now=NOW) is None

    @pytest.mark.parametrize("status", ["DELIVERED", "PICKED_UP", "FAILURE"])
    def test_hidden_once_delivered_or_failed(self, status):
        assert P.estimated_delivery(ful(status, eta=NOW + dt.timedelta(days=1)), [], now=NOW) is None

    def test_hidden_when_delivered_at_set(self):
        f = ful("OUT_FOR_DELIVERY", eta=NOW + dt.timedelta(days=1), delivered_at=NOW)
        assert P.estimated_delivery(f, [], now=NOW) is None

    def test_latest_event_eta_wins(self):
        events = [
            SimpleNamespace(estimated_delivery_at=NOW + dt.timedelta(days=1)),
            SimpleNamespace(estimated_delivery_at=NOW + dt.timedelta(days=4)),
            SimpleNamespace(estimated_delivery_at=None),
        ]
        f = ful("DELAYED", eta=NOW + dt.timedelta(days=1))
        assert P.estimated_delivery(f, events, now=NOW) == NOW + dt.timedelta(days=4)


def test_page_timezone_prefers_valid_customer_zone():
    assert (
        str(P.page_timezone(customer_timezone="Asia/Bangkok", shop_timezone="Europe/Warsaw"))
        == "Asia/Bangkok"
    )
    assert (
        str(P.page_timezone(customer_timezone="Mars/Base", shop_timezone="Europe/Warsaw")) == "Europe/Warsaw"
    )
    assert str(P.page_timezone(customer_timezone="", shop_timezone="")) == "UTC"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("pl-PL", "pl"),
        ("zh-TW", "zh-hant"),
        ("zh_Hant_HK", "zh-hant"),
        ("zh-CN", None),
        ("TH", "th"),
        ("de", None),
    ],
)
def test_normalize_language(code, expected):
    assert P.normalize_language(code) == expected


def test_choose_language_order():
    assert P.choose_language(requested="vi", candidates=["pl"]) == "vi"
    assert P.choose_language(requested="xx", candidates=["", "pl-PL", "th"]) == "pl"
    assert P.choose_language(requested=None, candidates=["fr"]) == "en"


class TestColours:
    def test_normalize_hex(self):
        assert P.normalize_hex("#ABC") == "#aabbcc"
        assert P.normalize_hex("1F2937") == "#1f2937"
        assert P.normalize_hex("red") is None
        assert P.normalize_hex("#12345g") is None
        assert P.normalize_hex("#fff;}body{") is None

    def test_contrast_ratio_known_values(self):
        assert P.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
        assert P.contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)

    @pytest.mark.parametrize(
        "bg", ["#ffff00", "#00ff00", "#ffffff", "#000000", "#1f2937", "#e11d48", "#777777"]
    )
    def test_header_text_always_readable(self, bg):
        pal = P.palette(brand_color=bg, accent_color="#2563eb", background_color="#ffffff")
        assert P.contrast_ratio(pal.header_text, pal.header_bg) >= 4.5

    @pytest.mark.parametrize("accent", ["#ffff00", "#a3e635", "#ffffff", "#2563eb", "#f472b6"])
    def test_pale_accent_is_darkened_to_aa(self, accent):
        pal = P.palette(brand_color="#000000", accent_color=accent, background_color="#ffffff")
        assert P.contrast_ratio(pal.accent, "#ffffff") >= 4.5
        assert P.contrast_ratio(pal.button_text, pal.button_bg) >= 4.5

    def test_readable_accent_kept(self):
        assert P.readable_color("#1d4ed8", "#ffffff") == "#1d4ed8"

    @pytest.mark.parametrize("bg", ["#000000", "#ffffff", "#facc15", "#1e3a8a"])
    def test_page_text_readable_on_page_background(self, bg):
        pal = P.palette(brand_color="#000000", accent_color="#2563eb", background_color=bg)
        assert P.contrast_ratio(pal.page_text, bg) >= 4.5


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://carrier.example/t?n=1", True),
        ("http://carrier.example/t", True),
        ("javascript:alert(1)", False),
        ("data:text/html,hi", False),
        ("//evil.example/x", False),
        ("", False),
    ],
)
def test_safe_http_url(url, ok):
    assert (P.safe_http_url(url) is not None) is ok
