"""Django settings, read from the environment (12-factor).

Embedded default: with no DATABASE_URL and no REDIS_URL the app runs on SQLite and a Celery broker on the
filesystem, so `make demo` needs nothing but Python. Production secrets have no defaults: with DEBUG off, a
missing SECRET_KEY, SHOPIFY_API_KEY, SHOPIFY_API_SECRET or FIELD_ENCRYPTION_KEYS stops the start with a
message naming the variable.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from retention_app.queues import TASK_ROUTES

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("BOOMERANG_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
DEBUG = env.bool("DEBUG", default=False)


def _secret(name: str, dev_default: str) -> str:
    """A production secret: required when DEBUG is off, a fixed dev value otherwise."""
    value = env.str(name, default="")
    if value:
        return value
    if DEBUG:
        return dev_default
    raise ImproperlyConfigured(
        f"Environment variable {name} is required in production (DEBUG is off). "
        f"Set it, or set DEBUG=1 for a local development run."
    )


def _dev_fernet_key(label: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(f"boomerang-dev-{label}".encode()).digest()).decode()


SECRET_KEY = _secret("SECRET_KEY", "dev-only-insecure-secret-key-do-not-use-in-production")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["*"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Public base URL of this app (OAuth redirect_uri, webhook address, links in emails).
APP_URL = env.str("APP_URL", default="http://127.0.0.1:8000").rstrip("/")

# Encryption keys for secrets at rest (MultiFernet): comma separated, the first encrypts, all decrypt.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[]) or (
    [_dev_fernet_key("fields")] if DEBUG else []
)
if not FIELD_ENCRYPTION_KEYS:
    _secret("FIELD_ENCRYPTION_KEYS", "")

# --- Shopify -------------------------------------------------------------------------------------------
SHOPIFY_API_KEY = _secret("SHOPIFY_API_KEY", "dev-boomerang-client-id")
SHOPIFY_API_SECRET = _secret("SHOPIFY_API_SECRET", "dev-boomerang-client-secret")
# The previous app secret, accepted on webhooks during a secret rotation window (empty: none).
SHOPIFY_API_SECRET_PREVIOUS = env.str("SHOPIFY_API_SECRET_PREVIOUS", default="")
SHOPIFY_API_VERSION = env.str("SHOPIFY_API_VERSION", default="2026-01")
SHOPIFY_SCOPES = env.list(
    "SHOPIFY_SCOPES",
    default=[
        "read_customers",
        "write_customers",
        "read_orders",
        "read_all_orders",
        "read_fulfillments",
        "read_products",
        "write_discounts",
        "read_discounts",
    ],
)
# How a shop domain becomes a base URL. Production: https://{shop}. The local dev store serves every shop
# under one address, e.g. http://127.0.0.1:8100/s/{shop}. Only validated shop domains are substituted.
SHOPIFY_STORE_URL_TEMPLATE = env.str("SHOPIFY_STORE_URL_TEMPLATE", default="https://{shop}")
# A second allowed shop-domain suffix for dev stores (e.g. ".devstore.test"); empty in production.
SHOPIFY_DEV_SHOP_SUFFIX = env.str("SHOPIFY_DEV_SHOP_SUFFIX", default="")
# Maximum age of an OAuth callback's timestamp, in seconds.
SHOPIFY_OAUTH_MAX_AGE = env.int("SHOPIFY_OAUTH_MAX_AGE", default=300)
# Webhook ingress: per platform, the function that maps a topic to its handler (retention_app/ingress).
INGRESS_TOPIC_RESOLVERS = {"shopify": "shop_integrations.shopify.webhook_handlers.resolve"}
# Store commerce webhook deliveries with PostgreSQL asynchronous commit (no wait for the WAL flush): the
# request gets several times faster on a busy disk; only a database-server crash within ~0.6 s can lose an
# acknowledged delivery, which the periodic reconciliation repairs. Lifecycle/privacy topics always wait.
INGRESS_ASYNC_COMMIT = env.bool("INGRESS_ASYNC_COMMIT", default=True)
# With a Redis broker, commerce webhook deliveries are answered once appended to a Redis stream and stored
# by a worker in batches (retention_app/ingress/buffer.py; trade-off in README "Webhook ingress").
INGRESS_REDIS_BUFFER = env.bool("INGRESS_REDIS_BUFFER", default=True)
# Benchmark mode (bench/webhook_ingress.py): exposes the do-nothing baseline view /webhooks/_bench/noop.
BENCH = env.bool("BENCH", default=False)

# --- Django --------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "retention_app.shops",
    "retention_app.commerce",
    "retention_app.ingress",
    "retention_app.automations",
    "retention_app.messaging",
    "retention_app.discounts",
    "retention_app.tracking",
    "retention_app.metrics",
    "retention_app.panel",
    "retention_app.api",
    "shop_integrations.shopify",
    "shop_integrations.csv",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "retention_app.urls"
WSGI_APPLICATION = "retention_app.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'boomerang.sqlite3'}"),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, dev store tools) share the file: wait for locks instead of failing.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USING_POSTGRES = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/app/login/"

LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("th", "ไทย"),
    ("vi", "Tiếng Việt"),
    ("pl", "Polski"),
    ("zh-hant", "繁體中文"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# Embedded in the Shopify admin the panel is a cross-site iframe: its cookies must be SameSite=None (and
# Secure) there, or every page would need a fresh session token. Plain http local runs keep Lax.
SESSION_COOKIE_SAMESITE = env.str("SESSION_COOKIE_SAMESITE", default="Lax" if DEBUG else "None")
CSRF_COOKIE_SAMESITE = env.str("CSRF_COOKIE_SAMESITE", default="Lax" if DEBUG else "None")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Email ---------------------------------------------------------------------------------------------
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = env.int("EMAIL_PORT", default=1025)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Boomerang <no-reply@boomerang.local>")
ANYMAIL = env.dict("ANYMAIL", default={})

# --- REST framework ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {"TITLE": "Boomerang API", "VERSION": "1.0.0", "SERVE_INCLUDE_SCHEMA": False}

# --- Celery --------------------------------------------------------------------------------------------
# CELERY_BROKER_URL_OVERRIDE / BOOMERANG_BROKER_DIR let end-to-end tests give a worker a broker of its own.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL_OVERRIDE", default="") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = Path(env.str("BOOMERANG_BROKER_DIR", default=str(VAR_DIR / "celery-broker")))
    for _sub in ("", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # exchange tables (else ./control in the cwd)
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = TASK_ROUTES  # retention_app/queues.py: which task runs on which queue
CELERY_TIMEZONE = "UTC"

# --- Logging -------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
