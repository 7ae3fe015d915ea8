"""Secrets at rest: encrypted in the database, MultiFernet key rotation, never in reprs or the admin."""

import datetime as dt

import pytest
from cryptography.fernet import Fernet
from django.contrib import admin
from django.core.management import call_command
from django.db import connection

from retention_app.shops.crypto import SecretDecryptionError, decrypt_str, encrypt_str
from retention_app.shops.models import ShopCredential
from retention_app.shops.services import AccessGrant, shop_credential_store

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def raw_columns(pk):
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM shops_shopcredential WHERE id = %s", [pk])
        return cursor.fetchone()


def test_round_trip_and_every_encryption_differs(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    first, second = encrypt_str("shpat_secret"), encrypt_str("shpat_secret")
    assert first != second and "shpat_secret" not in first
    assert decrypt_str(first) == decrypt_str(second) == "shpat_secret"


@pytest.mark.django_db
def test_tokens_are_encrypted_in_the_database(shop, settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    credential = shop_credential_store(
        shop=shop, grant=AccessGrant(access_token="shpat_plain", refresh_token="shprt_plain")
    )
    access_raw, refresh_raw = raw_columns(credential.pk)
    assert "shpat_plain" not in access_raw and "shprt_plain" not in refresh_raw
    assert Fernet(KEY_A).decrypt(access_raw.encode()) == b"shpat_plain"
    reloaded = ShopCredential.objects.get(pk=credential.pk)
    assert (reloaded.access_token, reloaded.refresh_token) == ("shpat_plain", "shprt_plain")


@pytest.mark.django_db
def test_key_rotation_reencrypts_with_the_first_key(shop, settings):
    # Given a token stored under key A
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    credential = shop_credential_store(shop=shop, grant=AccessGrant(access_token="tok", refresh_token="ref"))
    # When key B is put first and the rotation command runs
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    assert ShopCredential.objects.get(pk=credential.pk).access_token == "tok"  # A still decrypts
    call_command("rotate_encryption_keys")
    # Then key B alone decrypts everything and key A no longer does
    access_raw, refresh_raw = raw_columns(credential.pk)
    assert Fernet(KEY_B).decrypt(access_raw.encode()) == b"tok"
    assert Fernet(KEY_B).decrypt(refresh_raw.encode()) == b"ref"
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    reloaded = ShopCredential.objects.get(pk=credential.pk)
    assert (reloaded.access_token, reloaded.refresh_token) == ("tok", "ref")
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    with pytest.raises(SecretDecryptionError):
        ShopCredential.objects.get(pk=credential.pk)


def test_grant_and_credential_reprs_hide_tokens():
    grant = AccessGrant(
        access_token="shpat_visible?",
        refresh_token="shprt_visible?",
        access_token_expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
    )
    assert "visible" not in repr(grant) and "visible" not in str(grant)
    credential = ShopCredential(shop_id=1, access_token="shpat_visible?", refresh_token="shprt_visible?")
    assert "visible" not in repr(credential) and "visible" not in str(credential)


def test_credentials_are_not_in_the_admin():
    assert ShopCredential not in admin.site._registry
