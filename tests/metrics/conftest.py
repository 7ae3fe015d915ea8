"""Helpers to write small order histories in the shop's local time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tests.factories import CustomerFactory, OrderFactory


class History:
    """Builds customers and orders; times are given as local "YYYY-MM-DD HH:MM" of the shop's zone."""

    def __init__(self, shop):
        self.shop = shop
        self.customers: dict[str, object] = {}

    def at(self, local: str) -> dt.datetime:
        return dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(self.shop.timezone))

    def customer(self, name: str):
        if name not in self.customers:
            self.customers[name] = CustomerFactory(shop=self.shop, first_name=name)
        return self.customers[name]

    def order(self, name: str, local: str, total: str = "50.00", *, cancelled=False, test=False):
        placed = self.at(local)
        return OrderFactory(
            shop=self.shop,
            customer=self.customer(name),
            placed_at=placed,
            total_price=Decimal(total),
            cancelled_at=placed + dt.timedelta(hours=1) if cancelled else None,
            is_test=test,
        )


@pytest.fixture
def history(shop):
    return History(shop)
