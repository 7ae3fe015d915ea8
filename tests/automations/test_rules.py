"""Default rules, merchant edits with per-field validation, shop limits, tenant isolation."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from retention_app.automations import selectors, services
from retention_app.automations.models import Rule
from retention_app.shops import events as shop_events


def test_defaults_installed_on_shop_installed_and_idempotent(shop):
    shop_events.shop_installed.send(sender=None, shop=shop, reinstalled=False)
    shop_events.shop_installed.send(sender=None, shop=shop, reinstalled=True)
    rules = {r.key: r for r in Rule.objects.filter(shop=shop)}
    assert set(rules) == {"thank_you", "order_confirmation", "shipping_update", "win_back"}
    assert rules["thank_you"].delay_minutes == 30
    assert rules["thank_you"].conditions == {"first_order_only": True}
    assert rules["thank_you"].is_marketing and rules["win_back"].is_marketing
    assert not rules["shipping_update"].is_marketing
    assert rules["win_back"].lapse_days == 180
    assert rules["order_confirmation"].discount_enabled


def test_defaults_installed_lazily_and_merchant_edits_survive(shop):
    assert [r.key for r in selectors.rules_list(shop=shop)][0] == "thank_you"
    rule = Rule.objects.get(shop=shop, key="thank_you")
    services.rule_update(rule=rule, data={"delay_minutes": 45})
    services.rules_install_defaults(shop=shop)
    rule.refresh_from_db()
    assert rule.delay_minutes == 45


def test_rule_update_applies_valid_edits(shop):
    rule = Rule.objects.get(shop=shop, key="win_back") if selectors.rules_list(shop=shop) else None
    services.rule_update(
        rule=rule,
        data={
            "name": " Come back ",
            "enabled": False,
            "discount_value_type": "fixed_amount",
            "discount_value": "12.50",
            "discount_minimum_order": "40",
            "lapse_days": 90,
            "conditions": {"min_total_spent": "100", "customer_tags": ["vip"]},
        },
    )
    rule.refresh_from_db()
    assert rule.name == "Come back" and not rule.enabled and rule.lapse_days == 90
    assert rule.discount_value == Decimal("12.50") and rule.discount_minimum_order == Decimal("40")
    assert rule.conditions == {"customer_tags": ["vip"], "min_total_spent": "100"}
    services.rule_update(rule=rule, data={"discount_minimum_order": ""})
    rule.refresh_from_db()
    assert rule.discount_minimum_order is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"delay_minutes": -5}, "delay_minutes"),
        ({"discount_value": "0"}, "discount_value"),
        ({"discount_value": "150"}, "discount_value"),  # percentage over 100
        ({"discount_expires_in_days": 0}, "discount_expires_in_days"),
        ({"conditions": {"min_order_total": "abc"}}, "conditions"),
        ({"conditions": {"typo": 1}}, "conditions"),
        ({"name": ""}, "name"),
        ({"key": "win_back"}, "key"),  # fixed per rule
        ({"is_marketing": False}, "is_marketing"),  # fixed per rule
    ],
)
def test_rule_update_refuses_with_field_message(shop, data, field):
    rule = services.rules_install_defaults(shop=shop)[0]
    before = (rule.delay_minutes, rule.discount_value, rule.name, rule.conditions)
    with pytest.raises(ValidationError) as info:
        services.rule_update(rule=rule, data=data)
    assert field in info.value.message_dict
    assert info.value.message_dict[field][0]
    rule.refresh_from_db()
    assert (rule.delay_minutes, rule.discount_value, rule.name, rule.conditions) == before


def test_shop_settings_update_and_validation(shop):
    obj = services.shop_settings_update(
        shop=shop, data={"frequency_cap_hours": 48, "quiet_hours_start": "22:00", "quiet_hours_end": "07:30"}
    )
    assert obj.frequency_cap_hours == 48 and obj.quiet_hours_end.hour == 7
    with pytest.raises(ValidationError) as info:
        services.shop_settings_update(shop=shop, data={"frequency_cap_hours": -1})
    assert "frequency_cap_hours" in info.value.message_dict


def test_second_merchant_cannot_read_first_merchants_rule(shop, other_shop):
    rule = selectors.rules_list(shop=shop)[0]
    selectors.rules_list(shop=other_shop)
    with pytest.raises(Rule.DoesNotExist):
        selectors.rule_get(shop=other_shop, rule_id=rule.pk)
    assert selectors.rule_get(shop=shop, rule_id=rule.pk) == rule


def test_rule_test_send_renders_and_sends(shop, mailoutbox):
    rule = Rule.objects.get(pk=selectors.rules_list(shop=shop)[3].pk)  # win-back (marketing)
    services.rule_test_send(rule=rule, to_email="merchant@example.com", locale="pl")
    assert len(mailoutbox) == 1
    assert mailoutbox[0].subject.startswith("[Test] ")
    assert mailoutbox[0].to == ["merchant@example.com"]
    with pytest.raises(ValidationError):
        services.rule_test_send(rule=rule, to_email="not-an-email", locale="en")


def test_messages_list_is_tenant_scoped(shop, other_shop):
    from retention_app.automations.models import Message
    from tests.automations.conftest import fire_order, minutes_ago
    from tests.factories import OrderFactory

    services.rules_install_defaults(shop=shop)
    fire_order(OrderFactory(shop=shop, placed_at=minutes_ago(1)))
    assert Message.objects.filter(shop=shop).count() == 2
    assert selectors.messages_list(shop=other_shop).count() == 0
    assert selectors.messages_list(shop=shop, rule_key="thank_you").count() == 1
    assert selectors.message_status_counts(shop=shop) == {"scheduled": 2}
    assert selectors.message_status_counts(shop=other_shop) == {}
