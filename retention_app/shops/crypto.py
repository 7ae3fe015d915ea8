"""Secrets at rest: MultiFernet over settings.FIELD_ENCRYPTION_KEYS (the first key encrypts, every key
decrypts), and a model field that stores its value encrypted.

Rotation: put the new key first in FIELD_ENCRYPTION_KEYS, keep the old ones after it, run
`manage.py rotate_encryption_keys` (re-encrypts every stored secret with the first key), then drop the old
keys.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class SecretDecryptionError(Exception):
    """A stored secret cannot be decrypted with any configured key (a key was dropped too early)."""


@lru_cache(maxsize=8)
def _multi_fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: secrets cannot be encrypted")
    try:
        return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be url-safe base64 Fernet keys (32 bytes each)"
        ) from exc


def fernet() -> MultiFernet:
    return _multi_fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_str(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt_str(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError(
            "a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS"
        ) from None


def reencrypt_str(token: str) -> str:
    """The same secret encrypted with the current first key (MultiFernet.rotate)."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError(
            "a stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS"
        ) from None


class EncryptedTextField(models.TextField):
    """A text column whose value is stored Fernet-encrypted; Python code sees the plain string.

    "" is stored as "" (no secret). Not usable in lookups (every encryption differs). Keep such fields out
    of the admin, serializers, logs and reprs.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt_str(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_str(value)
