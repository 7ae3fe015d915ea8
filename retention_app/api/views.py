"""REST API v1. Every view reads the shop from `request.auth` (set by the authenticators); every queryset
is filtered by it, so another shop's ids answer 404."""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from retention_app.api.authentication import PanelSessionAuthentication, ShopTokenAuthentication
from retention_app.api.serializers import (
    CustomerSerializer,
    MessageSerializer,
    OrderSerializer,
    RetentionQuerySerializer,
    RetentionReportSerializer,
    RuleSerializer,
)
from retention_app.automations.models import Message, Rule
from retention_app.automations.services import rule_update
from retention_app.commerce.models import Order
from retention_app.metrics.selectors import MetricsInputError, customer_value, retention_report


def _flatten_errors(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten_errors(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten_errors(v) for v in detail)
    return str(detail)


class ShopScopedMixin:
    """Authenticated by a shop API token or the panel session; `self.shop` is the caller's shop."""

    authentication_classes = [ShopTokenAuthentication, PanelSessionAuthentication]
    permission_classes = [IsAuthenticated]

    @property
    def shop(self):
        return self.request.auth


class RetentionMetricsView(ShopScopedMixin, APIView):
    """The retention report of `manage.py retention_report --json`, for [start, end) in the shop's zone."""

    @extend_schema(
        parameters=[
            OpenApiParameter("shop", OpenApiTypes.STR, description="shop domain (must be the token's shop)"),
            OpenApiParameter("start", OpenApiTypes.DATE, required=True, description="YYYY-MM-DD, included"),
            OpenApiParameter("end", OpenApiTypes.DATE, required=True, description="YYYY-MM-DD, excluded"),
            OpenApiParameter("window_days", OpenApiTypes.INT, description="activity window W in days"),
        ],
        responses=RetentionReportSerializer,
    )
    def get(self, request):
        query = RetentionQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise ValidationError({"detail": _flatten_errors(query.errors)})
        params = query.validated_data
        if params.get("shop") and params["shop"].strip().lower() != self.shop.domain:
            raise Http404("No such shop.")
        try:
            report = retention_report(
                shop=self.shop,
                start=params["start"],
                end=params["end"],
                window_days=params.get("window_days"),
            )
        except MetricsInputError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(report.contract_dict())


class CustomerViewSet(ShopScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The shop's customers with order count and spend (non-cancelled, non-test orders). `?q=` searches
    email and names."""

    serializer_class = CustomerSerializer

    def get_queryset(self):
        qs = customer_value(shop=self.shop) if self.action == "list" else None
        from retention_app.commerce.models import Customer

        if qs is None:
            qs = Customer.objects.filter(shop=self.shop)
        q = self.request.query_params.get("q", "").strip()
        if q:
            qs = qs.filter(Q(email__icontains=q) | Q(first_name__icontains=q) | Q(last_name__icontains=q))
        return qs.order_by("id")

    @extend_schema(parameters=[OpenApiParameter("q", OpenApiTypes.STR, description="search")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class OrderViewSet(ShopScopedMixin, viewsets.ReadOnlyModelViewSet):
    """The shop's orders, newest first; `?customer=<id>` filters by customer."""

    serializer_class = OrderSerializer

    def get_queryset(self):
        qs = Order.objects.filter(shop=self.shop).order_by("-placed_at", "-id")
        customer = self.request.query_params.get("customer")
        if customer:
            if not customer.isdigit():
                raise ValidationError({"detail": "customer must be a numeric id"})
            qs = qs.filter(customer_id=int(customer))
        return qs


class RuleViewSet(ShopScopedMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """The shop's automation rules. PATCH `{"enabled": false}` pauses a rule (true enables it)."""

    serializer_class = RuleSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        return Rule.objects.filter(shop=self.shop).order_by("id")

    def perform_update(self, serializer):
        if "enabled" in serializer.validated_data:
            rule_update(rule=serializer.instance, data={"enabled": serializer.validated_data["enabled"]})


class MessageViewSet(ShopScopedMixin, viewsets.ReadOnlyModelViewSet):
    """What each customer received or will receive (`status`, and `reason` when not sent)."""

    serializer_class = MessageSerializer

    def get_queryset(self):
        qs = Message.objects.filter(shop=self.shop).select_related("rule").order_by("-created_at", "-id")
        params = self.request.query_params
        if params.get("customer"):
            if not params["customer"].isdigit():
                raise ValidationError({"detail": "customer must be a numeric id"})
            qs = qs.filter(customer_id=int(params["customer"]))
        if params.get("status"):
            qs = qs.filter(status=params["status"])
        return qs
