"""Merchant panel: server-rendered pages. Every page goes through `shop_required` (the shop comes from
the panel session only) and every object lookup is filtered by that shop, so another merchant's ids 404."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django.contrib import messages as flash
from django.contrib.auth import authenticate, login, logout
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from retention_app.api.models import ShopApiToken
from retention_app.api.services import api_token_create, api_token_revoke
from retention_app.automations.models import Message
from retention_app.commerce.models import Customer, Order
from retention_app.discounts.models import DiscountCode
from retention_app.metrics import selectors as metrics
from retention_app.metrics.automation import (
    attributed_revenue_by_month,
    automation_results,
    tracking_results,
)
from retention_app.metrics.dashboard import dashboard_data
from retention_app.panel import charts
from retention_app.panel.auth import SESSION_KEY, login_shop, member_shops, shop_required
from retention_app.panel.forms import ApiTokenForm, LoginForm, PanelSettingsForm, PeriodForm
from retention_app.panel.models import NorthStar
from retention_app.panel.services import panel_settings_get, panel_settings_update


def _local_today(shop) -> dt.date:
    return timezone.localtime(timezone.now(), metrics.shop_zone(shop)).date()


def _period(request, shop) -> tuple[PeriodForm, dt.date, dt.date, int]:
    today = _local_today(shop)
    default_end = today + dt.timedelta(days=1)
    initial = {
        "start": default_end - dt.timedelta(days=30),
        "end": default_end,
        "window_days": shop.activity_window_days,
    }
    form = PeriodForm(request.GET or None, initial=initial)
    start, end, window = initial["start"], initial["end"], shop.activity_window_days
    if request.GET and form.is_valid():
        start, end = form.cleaned_data["start"], form.cleaned_data["end"]
        window = form.cleaned_data.get("window_days") or window
    return form, start, end, window


def _north_star(report, key: str) -> dict:
    values = {
        NorthStar.RETENTION_RATE: (report.retention_rate, "%"),
        NorthStar.CHURN_RATE: (report.churn_rate, "%"),
        NorthStar.REPEAT_PURCHASE_RATE: (report.repeat_purchase_rate, "%"),
        NorthStar.ACTIVE_CUSTOMERS: (report.E, ""),
        NorthStar.NEW_CUSTOMERS: (report.N, ""),
        NorthStar.AVERAGE_ORDER_VALUE: (report.average_order_value, report.currency),
        NorthStar.CUSTOMER_LIFETIME_VALUE: (report.customer_lifetime_value, report.currency),
    }
    value, unit = values.get(key, (None, ""))
    return {"key": key, "label": NorthStar(key).label, "value": value, "unit": unit}


@shop_required
def dashboard(request):
    shop = request.shop
    form, start, end, window = _period(request, shop)
    settings_row = panel_settings_get(shop=shop)
    data = dashboard_data(
        shop=shop,
        start=start,
        end=end,
        window_days=window,
        vip_share_percent=settings_row.vip_share_percent,
        cohort_months=12,
        series_months=12,
    )
    report, series = data.report, data.series
    zone = metrics.shop_zone(shop)
    results = automation_results(
        shop=shop, start=metrics.local_midnight(start, zone), end=metrics.local_midnight(end, zone)
    )
    months = metrics.month_starts(end_month_start=(end - dt.timedelta(days=1)).replace(day=1), months=11)
    by_month = {
        r["month"].date() if hasattr(r["month"], "date") else r["month"]: r["revenue"]
        for r in attributed_revenue_by_month(
            shop=shop,
            start=metrics.local_midnight(months[0], zone),
            end=metrics.local_midnight(end, zone),
        )
    }
    context = {
        "revenue_chart": charts.bar_chart(
            labels=[m.strftime("%Y-%m") for m in months],
            values=[(by_month.get(m) or Decimal(0)).quantize(Decimal("0.01")) for m in months],
        ),
        "form": form,
        "report": report,
        "north_star": _north_star(report, settings_row.north_star_metric),
        "series": series,
        "series_chart": charts.line_chart(
            labels=[r["start"].strftime("%Y-%m") for r in series],
            lines=[
                ("retention", [r["retention_rate"] for r in series]),
                ("churn", [r["churn_rate"] for r in series]),
            ],
        ),
        "cohorts": data.cohorts,
        "cohort_months": range(max((len(c.retention) for c in data.cohorts), default=0)),
        "at_risk": data.at_risk,
        "vips": data.vips,
        "vip_share": settings_row.vip_share_percent,
        "results": results,
        "tracking": tracking_results(
            shop=shop, start=metrics.local_midnight(start, zone), end=metrics.local_midnight(end, zone)
        ),
        "period_days": (end - start).days,
    }
    return render(request, "panel/dashboard.html", context)


@shop_required
def customers(request):
    shop = request.shop
    q = request.GET.get("q", "").strip()[:200]
    qs = metrics.customer_value(shop=shop)
    if q:
        qs = qs.filter(Q(email__icontains=q) | Q(first_name__icontains=q) | Q(last_name__icontains=q))
    page = Paginator(qs.order_by("-last_order_at", "id"), 50).get_page(request.GET.get("page"))
    return render(request, "panel/customers.html", {"page": page, "q": q})


@shop_required
def customer_detail(request, customer_id: int):
    shop = request.shop
    customer = get_object_or_404(Customer, shop=shop, pk=customer_id)
    context = {
        "customer": customer,
        "orders": Order.objects.filter(shop=shop, customer=customer).order_by("-placed_at")[:200],
        "messages": Message.objects.filter(shop=shop, customer=customer).select_related("rule")[:200],
        "issued_codes": DiscountCode.objects.filter(shop=shop, customer=customer).order_by("-created_at")[
            :100
        ],
        "codes": sorted(
            {
                code
                for codes in Order.objects.filter(shop=shop, customer=customer).values_list(
                    "discount_codes", flat=True
                )
                for code in (codes or [])
            }
        ),
    }
    return render(request, "panel/customer_detail.html", context)


@shop_required
def message_list(request):
    shop = request.shop
    qs = Message.objects.filter(shop=shop).select_related("rule", "customer")
    status = request.GET.get("status", "")
    if status in Message.Status.values:
        qs = qs.filter(status=status)
    page = Paginator(qs.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    return render(
        request, "panel/messages.html", {"page": page, "status": status, "statuses": Message.Status.choices}
    )


@shop_required
def sync_status(request):
    shop = request.shop
    from retention_app.commerce.selectors import sync_progress_for_shop
    from retention_app.ingress.models import WebhookDelivery
    from retention_app.ingress.selectors import webhook_deliveries_for_shop

    deliveries = webhook_deliveries_for_shop(shop=shop)
    context = {
        "jobs": sync_progress_for_shop(shop=shop),
        "last_webhook": deliveries.first(),
        "failed_webhooks": deliveries.filter(status=WebhookDelivery.Status.FAILED)[:20],
        "failed_count": deliveries.filter(status=WebhookDelivery.Status.FAILED).count(),
        "pending_count": deliveries.filter(status=WebhookDelivery.Status.PENDING).count(),
    }
    return render(request, "panel/sync.html", context)


def _audit_outcome_labels() -> dict[str, str]:
    # The ingress model's labels are not translated: the panel names the outcomes itself.
    return {
        "exported": _("Data exported"),
        "redacted": _("Customer data erased"),
        "shop_deleted": _("Shop data deleted"),
        "no_data": _("Nothing held"),
    }


@shop_required
def privacy(request):
    """Customer data requests (customers/data_request) with their exports, and the compliance audit log.

    Only this shop's exports and audit records (selectors scoped by shop). The audit log holds platform ids
    and counts, no personal data; the exports do, so they are served only as a download of one export."""
    shop = request.shop
    from retention_app.ingress.selectors import (
        compliance_audit_records_for_shop,
        customer_data_exports_for_shop,
    )

    exports = Paginator(customer_data_exports_for_shop(shop=shop), 50).get_page(request.GET.get("page"))
    rows = []
    for export in exports:
        customers = (export.data or {}).get("customers") or []
        emails = [c.get("email") for c in customers if isinstance(c, dict) and c.get("email")]
        rows.append(
            {
                "export": export,
                "email": ", ".join(dict.fromkeys(emails)),
                "status": _("Erased") if export.redacted_at else _("Ready"),
            }
        )
    labels = _audit_outcome_labels()
    audit = [
        {
            "record": record,
            "outcome": labels.get(record.outcome, record.outcome),
            "counts": sorted((record.counts or {}).items()) if isinstance(record.counts, dict) else [],
        }
        for record in compliance_audit_records_for_shop(shop=shop)[:200]
    ]
    return render(request, "panel/privacy.html", {"page": exports, "rows": rows, "audit": audit})


@shop_required
def privacy_export_download(request, export_id: int):
    """One export of this shop as a JSON attachment; another shop's id (or an unknown one) answers 404."""
    from retention_app.ingress.selectors import customer_data_export_get

    export = customer_data_export_get(shop=request.shop, export_id=export_id)
    if export is None:
        raise Http404
    if export.redacted_at is not None:
        return HttpResponse(
            _("This export was erased after the customer's data was deleted."),
            status=410,
            content_type="text/plain; charset=utf-8",
        )
    response = JsonResponse(export.data, json_dumps_params={"ensure_ascii": False, "indent": 2})
    # Platform ids are digits; keep only safe characters in the header anyway.
    customer = re.sub(r"[^0-9A-Za-z_-]", "", export.customer_platform_id)[:64] or "customer"
    response["Content-Disposition"] = f'attachment; filename="data-export-{customer}-{export.pk}.json"'
    # Personal data: never kept by a shared cache or the browser's.
    response["Cache-Control"] = "no-store"
    return response


@shop_required
@require_http_methods(["GET", "POST"])
def settings_view(request):
    shop = request.shop
    row = panel_settings_get(shop=shop)
    form = PanelSettingsForm(
        request.POST if request.method == "POST" else None,
        instance=row,
        initial={"activity_window_days": shop.activity_window_days},
    )
    if request.method == "POST" and form.is_valid():
        panel_settings_update(
            shop=shop,
            north_star_metric=form.cleaned_data["north_star_metric"],
            vip_share_percent=Decimal(form.cleaned_data["vip_share_percent"]),
            activity_window_days=form.cleaned_data["activity_window_days"],
        )
        flash.success(request, _("Settings saved."))
        return redirect("panel:settings")
    context = {
        "form": form,
        "token_form": ApiTokenForm(),
        "tokens": ShopApiToken.objects.filter(shop=shop, revoked_at__isnull=True).order_by("-created_at"),
        "new_token": request.session.pop("panel_new_token", None),
    }
    return render(request, "panel/settings.html", context)


@shop_required
@require_POST
def api_token_create_view(request):
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        _, plain = api_token_create(shop=request.shop, name=form.cleaned_data["name"])
        # Shown once on the next page, then gone (never stored in clear).
        request.session["panel_new_token"] = plain
    return redirect("panel:settings")


@shop_required
@require_POST
def api_token_revoke_view(request, token_id: int):
    if not api_token_revoke(shop=request.shop, token_id=token_id):
        raise Http404
    flash.success(request, _("Token revoked."))
    return redirect("panel:settings")


def _safe_next(request, fallback: str) -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or ""
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}, require_https=False):
        return nxt
    return fallback


@require_http_methods(["GET", "POST"])
def login_view(request):
    form = LoginForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        user = authenticate(
            request, username=form.cleaned_data["username"], password=form.cleaned_data["password"]
        )
        if user is None:
            error = _("Wrong username or password.")
        else:
            shop = member_shops(user).first()
            if shop is None:
                error = _("This account is not linked to any shop.")
            else:
                login(request, user)  # cycles the session key
                request.session[SESSION_KEY] = shop.pk
                return HttpResponseRedirect(_safe_next(request, reverse("panel:dashboard")))
    return render(
        request,
        "panel/login.html",
        {"form": form, "error": error, "next": _safe_next(request, "")},
        status=200,
    )


@require_POST
def logout_view(request):
    logout(request)  # flushes the session, shop included
    return redirect("panel:login")


@shop_required
@require_POST
def switch_shop(request):
    shop_id = request.POST.get("shop_id", "")
    target = member_shops(request.user).filter(pk=int(shop_id) if shop_id.isdigit() else 0).first()
    if target is None:
        raise Http404
    login_shop(request, target)
    return redirect("panel:dashboard")
