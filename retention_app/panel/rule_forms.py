"""The rule editor form: the rule's settings, its conditions and its email template for one language.

Field types are checked here; the business rules are checked by the owning services
(`automations.services.rule_update`, `messaging.services.template_validate`) and their errors are put
back next to the matching field by `add_service_errors`.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from retention_app.automations.models import Rule

LIST_CONDITIONS = ("contains_product_ids", "contains_collection_ids", "customer_tags")
CONDITION_FIELDS = (
    "first_order_only",
    "min_order_total",
    "contains_product_ids",
    "contains_collection_ids",
    "customer_tags",
    "min_order_count",
    "max_order_count",
    "min_total_spent",
    "accepts_marketing",
)
TEMPLATE_FIELDS = ("subject", "html_body", "text_body")


class RuleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    enabled = forms.BooleanField(label=_("Enabled"), required=False)
    delay_minutes = forms.IntegerField(
        label=_("Delay (minutes after the trigger)"), min_value=0, max_value=60 * 24 * 90
    )
    lapse_days = forms.IntegerField(
        label=_("Lapsed after (days without an order)"), min_value=1, max_value=3650, required=False
    )
    # Conditions (Rule.conditions), each optional.
    cond_first_order_only = forms.BooleanField(label=_("Only the customer's first order"), required=False)
    cond_min_order_total = forms.DecimalField(label=_("Minimum order total"), required=False, min_value=0)
    cond_contains_product_ids = forms.CharField(
        label=_("Order contains one of these product ids (comma separated)"), required=False
    )
    cond_contains_collection_ids = forms.CharField(
        label=_("Order contains a product of these collection ids (comma separated)"), required=False
    )
    cond_customer_tags = forms.CharField(
        label=_("Customer has one of these tags (comma separated)"), required=False
    )
    cond_min_order_count = forms.IntegerField(
        label=_("Minimum number of orders"), required=False, min_value=0
    )
    cond_max_order_count = forms.IntegerField(
        label=_("Maximum number of orders"), required=False, min_value=0
    )
    cond_min_total_spent = forms.DecimalField(label=_("Minimum total spent"), required=False, min_value=0)
    cond_accepts_marketing = forms.BooleanField(
        label=_("Only customers who accept email marketing"), required=False
    )
    # Discount code created when the email is sent.
    discount_enabled = forms.BooleanField(label=_("Include a discount code"), required=False)
    discount_value_type = forms.ChoiceField(label=_("Discount type"), choices=Rule.DiscountValueType.choices)
    discount_value = forms.DecimalField(label=_("Discount value"), decimal_places=4, max_digits=18)
    discount_expires_in_days = forms.IntegerField(
        label=_("Code valid for (days)"), min_value=1, max_value=365
    )
    discount_minimum_order = forms.DecimalField(label=_("Minimum order for the code"), required=False)
    # Email template of one language.
    locale = forms.CharField(widget=forms.HiddenInput)
    subject = forms.CharField(label=_("Subject"), max_length=500)
    html_body = forms.CharField(label=_("Email (HTML)"), widget=forms.Textarea(attrs={"rows": 14}))
    text_body = forms.CharField(
        label=_("Plain-text version (empty: made from the HTML)"),
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
    )

    @classmethod
    def initial_for(cls, rule: Rule, template) -> dict:
        data = {
            "name": rule.name,
            "enabled": rule.enabled,
            "delay_minutes": rule.delay_minutes,
            "lapse_days": rule.lapse_days,
            "discount_enabled": rule.discount_enabled,
            "discount_value_type": rule.discount_value_type,
            "discount_value": rule.discount_value,
            "discount_expires_in_days": rule.discount_expires_in_days,
            "discount_minimum_order": rule.discount_minimum_order,
            "locale": template.locale if template else "en",
            "subject": template.subject if template else "",
            "html_body": template.html_body if template else "",
            "text_body": template.text_body if template else "",
        }
        conditions = rule.conditions or {}
        for key in CONDITION_FIELDS:
            value = conditions.get(key)
            if key in LIST_CONDITIONS:
                value = ", ".join(value or [])
            data[f"cond_{key}"] = value
        return data

    def rule_data(self, rule: Rule) -> dict:
        """The edits in the shape `automations.services.rule_update` takes."""
        c = self.cleaned_data
        conditions = {}
        for key in CONDITION_FIELDS:
            value = c.get(f"cond_{key}")
            if key in LIST_CONDITIONS:
                value = [v.strip() for v in (value or "").split(",") if v.strip()]
                if value:
                    conditions[key] = value
            elif isinstance(value, bool):
                if value:
                    conditions[key] = True
            elif value is not None:
                conditions[key] = str(value) if not isinstance(value, int) else value
        data = {
            "name": c["name"],
            "enabled": c["enabled"],
            "delay_minutes": c["delay_minutes"],
            "conditions": conditions,
            "discount_enabled": c["discount_enabled"],
            "discount_value_type": c["discount_value_type"],
            "discount_value": c["discount_value"],
            "discount_expires_in_days": c["discount_expires_in_days"],
            "discount_minimum_order": c.get("discount_minimum_order"),
        }
        if rule.trigger == Rule.Trigger.CUSTOMER_LAPSED and c.get("lapse_days") is not None:
            data["lapse_days"] = c["lapse_days"]
        return data

    def add_service_errors(self, exc: ValidationError) -> None:
        """Put a service's ValidationError next to the matching field ("conditions" errors are
        "<condition>: message")."""
        for field, messages in exc.message_dict.items():
            for message in messages:
                if field == "conditions" and ":" in message:
                    key, _sep, text = message.partition(":")
                    target = f"cond_{key.strip().split('.')[0]}"
                    if target in self.fields:
                        self.add_error(target, text.strip())
                        continue
                if field == "conditions":
                    mentioned = [k for k in CONDITION_FIELDS if k in message]
                    if mentioned:
                        self.add_error(f"cond_{mentioned[-1]}", message)
                        continue
                self.add_error(field if field in self.fields else None, message)
