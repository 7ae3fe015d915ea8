"""Serializers of the REST API (read shapes; writes go through services)."""

from __future__ import annotations

from rest_framework import serializers

from retention_app.automations.models import Message, Rule
from retention_app.commerce.models import Customer, Order


class RetentionQuerySerializer(serializers.Serializer):
    shop = serializers.CharField(required=False, help_text="shop domain; defaults to the token's shop")
    start = serializers.DateField(input_formats=["%Y-%m-%d"], help_text="YYYY-MM-DD, included")
    end = serializers.DateField(input_formats=["%Y-%m-%d"], help_text="YYYY-MM-DD, excluded")
    window_days = serializers.IntegerField(required=False, min_value=1, max_value=3660)

    def validate(self, attrs):
        if attrs["end"] <= attrs["start"]:
            raise serializers.ValidationError({"end": "end must be after start"})
        return attrs


class CohortSerializer(serializers.Serializer):
    cohort = serializers.CharField(help_text="YYYY-MM of the first order (shop time zone)")
    size = serializers.IntegerField()
    retention = serializers.ListField(child=serializers.FloatField(allow_null=True))


class RetentionReportSerializer(serializers.Serializer):
    """Exactly the JSON of `manage.py retention_report --json`."""

    S = serializers.IntegerField()
    E = serializers.IntegerField()
    N = serializers.IntegerField()
    retention_rate = serializers.FloatField(allow_null=True)
    churn_rate = serializers.FloatField(allow_null=True)
    repeat_purchase_rate = serializers.FloatField(allow_null=True)
    cohorts = CohortSerializer(many=True)


class CustomerSerializer(serializers.ModelSerializer):
    order_count = serializers.IntegerField(read_only=True, required=False)
    spend = serializers.DecimalField(max_digits=24, decimal_places=2, read_only=True, required=False)

    class Meta:
        model = Customer
        fields = [
            "id",
            "platform_id",
            "email",
            "first_name",
            "last_name",
            "locale",
            "tags",
            "marketing_state",
            "platform_created_at",
            "order_count",
            "spend",
        ]


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = [
            "id",
            "platform_id",
            "name",
            "customer",
            "currency",
            "total_price",
            "financial_status",
            "fulfillment_status",
            "discount_codes",
            "is_test",
            "cancelled_at",
            "placed_at",
        ]


class RuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rule
        fields = [
            "id",
            "key",
            "name",
            "enabled",
            "trigger",
            "delay_minutes",
            "conditions",
            "is_marketing",
            "discount_enabled",
            "discount_value_type",
            "discount_value",
            "discount_expires_in_days",
            "discount_minimum_order",
            "lapse_days",
            "updated_at",
        ]
        read_only_fields = [f for f in fields if f != "enabled"]


class MessageSerializer(serializers.ModelSerializer):
    rule_key = serializers.CharField(source="rule.key", read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "rule",
            "rule_key",
            "customer",
            "order",
            "trigger_key",
            "status",
            "reason",
            "due_at",
            "sent_at",
            "subject",
            "locale",
            "created_at",
        ]
