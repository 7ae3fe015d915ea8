"""The foundation: settings fail clearly without production secrets, the core models keep tenants apart."""

import os
import subprocess
import sys

import pytest
from django.db import IntegrityError

from tests.factories import CustomerFactory


def _start_without(var: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", var, "DJANGO_SETTINGS_MODULE"}}
    env.update(
        SECRET_KEY="x" * 50,
        SHOPIFY_API_KEY="key",
        SHOPIFY_API_SECRET="secret",
        FIELD_ENCRYPTION_KEYS="A" * 43 + "=",
    )
    env.pop(var, None)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "var", ["SECRET_KEY", "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET", "FIELD_ENCRYPTION_KEYS"]
)
def test_production_start_without_a_secret_fails_naming_it(var):
    result = _start_without(var)
    assert result.returncode != 0
    assert f"Environment variable {var} is required" in result.stderr


def test_same_platform_id_in_two_shops_is_two_customers(shop, other_shop):
    a = CustomerFactory(shop=shop, platform_id="1")
    b = CustomerFactory(shop=other_shop, platform_id="1")
    assert a.pk != b.pk


def test_platform_id_is_unique_within_a_shop(shop):
    CustomerFactory(shop=shop, platform_id="1")
    with pytest.raises(IntegrityError):
        CustomerFactory(shop=shop, platform_id="1")
