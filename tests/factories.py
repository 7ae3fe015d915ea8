"""factory-boy factories for the core models. Add factories for your own domain here."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone as django_tz

from retention_app.commerce.models import Customer, Fulfillment, LineItem, Order, Product
from retention_app.shops.models import Shop


class ShopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shop
        django_get_or_create = ("platform", "domain")

    platform = Shop.Platform.SHOPIFY
    domain = factory.Sequence(lambda n: f"shop{n}.myshopify.com")
    name = factory.Sequence(lambda n: f"Shop {n}")
    email = "owner@example.com"
    owner_name = "Mai"
    currency = "USD"
    timezone = "UTC"
    status = Shop.Status.INSTALLED
    installed_at = factory.LazyFunction(django_tz.now)
    storefront_url = factory.LazyAttribute(lambda o: f"https://{o.domain}")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    shop = factory.SubFactory(ShopFactory)
    platform_id = factory.Sequence(lambda n: str(7000 + n))
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = "Ana"
    last_name = "Nowak"
    marketing_state = Customer.MarketingState.SUBSCRIBED


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    shop = factory.SubFactory(ShopFactory)
    platform_id = factory.Sequence(lambda n: str(9000 + n))
    title = factory.Sequence(lambda n: f"Product {n}")
    handle = factory.Sequence(lambda n: f"product-{n}")
    price = Decimal("20.00")
    currency = "USD"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    shop = factory.SubFactory(ShopFactory)
    customer = factory.SubFactory(CustomerFactory, shop=factory.SelfAttribute("..shop"))
    platform_id = factory.Sequence(lambda n: str(5000 + n))
    name = factory.Sequence(lambda n: f"#{1001 + n}")
    email = factory.LazyAttribute(lambda o: o.customer.email if o.customer else "")
    currency = "USD"
    total_price = Decimal("50.00")
    financial_status = "paid"
    placed_at = factory.LazyFunction(lambda: django_tz.now() - dt.timedelta(days=1))


class LineItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LineItem

    order = factory.SubFactory(OrderFactory)
    shop = factory.SelfAttribute("order.shop")
    platform_id = factory.Sequence(lambda n: str(30000 + n))
    title = "Product"
    quantity = 1
    price = Decimal("50.00")


class FulfillmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Fulfillment

    order = factory.SubFactory(OrderFactory)
    shop = factory.SelfAttribute("order.shop")
    platform_id = factory.Sequence(lambda n: str(60000 + n))
    status = "success"
    tracking_company = "DHL Express"
    tracking_number = factory.Sequence(lambda n: f"JD0146000{n:05d}")
