"""Factories for automation rows used by panel and API tests (the automations domain has none yet)."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from retention_app.automations.models import Message, Rule
from tests.factories import CustomerFactory, ShopFactory


class RuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rule
        django_get_or_create = ("shop", "key")

    shop = factory.SubFactory(ShopFactory)
    key = Rule.Key.THANK_YOU
    name = "Thank-you from the owner"
    trigger = Rule.Trigger.ORDER_PLACED
    delay_minutes = 30


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    shop = factory.SubFactory(ShopFactory)
    rule = factory.SubFactory(RuleFactory, shop=factory.SelfAttribute("..shop"))
    customer = factory.SubFactory(CustomerFactory, shop=factory.SelfAttribute("..shop"))
    trigger_key = factory.Sequence(lambda n: f"order:{n}")
    due_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(minutes=30))
