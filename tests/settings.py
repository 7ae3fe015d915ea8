"""Test settings: the real settings with development defaults, plus what tests need.

DATABASE_URL / REDIS_URL from the environment select PostgreSQL and Redis (as CI does); without them the
suite runs on SQLite and a filesystem broker, and tests that need a server skip with the reason.
"""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SHOPIFY_DEV_SHOP_SUFFIX", ".devstore.test")

from retention_app.settings import *  # noqa: E402,F403
from retention_app.settings import DATABASES, VAR_DIR  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file (not :memory:) so worker and server subprocesses started by end-to-end tests share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
