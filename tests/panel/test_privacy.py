"""Privacy page: customer data requests (customers/data_request exports made by the ingress service) with a
JSON download, and the compliance audit log. Tenant isolation, login, translations."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from retention_app.ingress.models import CustomerDataExport
from retention_app.ingress.services import customer_data_export_create
from tests.factories import CustomerFactory, OrderFactory
from tests.panel.test_panel import merchant

pytestmark = pytest.mark.django_db


@pytest.fixture
def panel(shop):
    client = Client()
    merchant(shop)
    assert client.login(username="mai", password="s3cret-pass!")
    return client


@pytest.fixture
def export(shop):
    """A data request processed by the real ingress service (the path customers/data_request takes)."""
    customer = CustomerFactory(shop=shop, platform_id="7001001", email="somchai.data@example.com")
    OrderFactory(shop=shop, customer=customer, name="#PRIV-1", platform_id="5001001")
    return customer_data_export_create(
        shop=shop,
        webhook_id="dr-panel-1",
        customer_platform_id="7001001",
        email="somchai.data@example.com",
        order_platform_ids=["5001001"],
        data_request_id="9999",
    )


def test_privacy_page_lists_requests_and_audit_log(panel, export):
    response = panel.get("/app/privacy/")
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-export="{export.pk}"' in body
    assert "7001001" in body and "somchai.data@example.com" in body
    assert f"/app/privacy/exports/{export.pk}.json" in body
    assert "Ready" in body
    # The audit log: topic, outcome and counts (customers 1, orders 1).
    log = body.split('id="audit-log"')[1]
    assert "customers/data_request" in log and "Data exported" in log
    assert "customers: 1" in log and "orders: 1" in log
    assert "somchai" not in log
    # The nav links the page.
    assert 'href="/app/privacy/" class="active"' in body


def test_download_returns_the_customers_data_as_json_attachment(panel, export):
    response = panel.get(f"/app/privacy/exports/{export.pk}.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="data-export-7001001-{export.pk}.json"'
    assert response["Cache-Control"] == "no-store"
    data = json.loads(response.content)
    assert data["customer_platform_id"] == "7001001"
    assert [c["email"] for c in data["customers"]] == ["somchai.data@example.com"]
    assert [o["name"] for o in data["orders"]] == ["#PRIV-1"]


def test_an_erased_export_is_gone(panel, export):
    CustomerDataExport.objects.filter(pk=export.pk).update(data={}, redacted_at=timezone.now())
    body = panel.get("/app/privacy/").content.decode()
    assert "Erased" in body and f"/app/privacy/exports/{export.pk}.json" not in body
    assert panel.get(f"/app/privacy/exports/{export.pk}.json").status_code == 410


def test_another_shop_never_sees_the_requests(export, other_shop):
    rival = Client()
    merchant(other_shop, username="zed")
    assert rival.login(username="zed", password="s3cret-pass!")
    assert rival.get(f"/app/privacy/exports/{export.pk}.json").status_code == 404
    assert rival.get("/app/privacy/exports/999999.json").status_code == 404
    body = rival.get("/app/privacy/").content.decode()
    for secret in ("7001001", "somchai", "customers/data_request", f"/app/privacy/exports/{export.pk}.json"):
        assert secret not in body, secret
    assert "No data requests received yet." in body and "No privacy requests received yet." in body


def test_login_required(export):
    for url in ("/app/privacy/", f"/app/privacy/exports/{export.pk}.json"):
        response = Client().get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/app/login/?next="), url


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("th", ["ความเป็นส่วนตัว", "คำขอข้อมูลลูกค้า", "ส่งออกข้อมูลแล้ว"]),
        ("vi", ["Quyền riêng tư", "Yêu cầu dữ liệu khách hàng", "Đã xuất dữ liệu"]),
        ("pl", ["Prywatność", "Wnioski o dane klientów", "Dane wyeksportowane"]),
        ("zh-hant", ["隱私", "顧客資料請求", "資料已匯出"]),
    ],
)
def test_privacy_page_is_translated(panel, export, lang, words):
    assert panel.post("/app/i18n/setlang/", {"language": lang, "next": "/app/privacy/"}).status_code == 302
    body = panel.get("/app/privacy/").content.decode()
    for word in words:
        assert word in body, (lang, word)
