"""Shared fixtures: personas (a merchant and a second merchant who must never see the first one's data)
and switches for tests that need PostgreSQL, Redis or Chromium. Area fixtures live in tests/fixtures/."""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

pytest_plugins = [
    "tests.fixtures.devstore",
    "tests.fixtures.processes",
]


def pytest_configure(config):
    os.makedirs(settings.VAR_DIR, exist_ok=True)


requires_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres", "pgsql")),
    reason="needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)",
)
requires_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"), reason="needs Redis: set REDIS_URL=redis://... (CI does)"
)
requires_chromium = pytest.mark.skipif(
    not shutil.which("chromium"), reason="needs Debian's chromium: apt-get install -y chromium (.ci/run does)"
)


@pytest.fixture
def shop(db):
    from tests.factories import ShopFactory

    return ShopFactory(domain="acme.myshopify.com", name="Acme Tea")


@pytest.fixture
def other_shop(db):
    """The second merchant: must never see anything of `shop`."""
    from tests.factories import ShopFactory

    return ShopFactory(domain="rival.myshopify.com", name="Rival Coffee")
