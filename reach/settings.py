"""Reach settings: every value comes from the environment, read here and nowhere else.

With no DATABASE_URL / REDIS_URL Reach runs in its *embedded default*: SQLite in var/,
an in-process channel layer, an in-memory Celery broker (worker and beat run inside
`manage.py serve`) and an in-process Redis (fakeredis) for rate limits and token buckets.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("REACH_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(str(BASE_DIR / ".env"), overwrite=False)

REACH_ENV = env.str("REACH_ENV", default="development")
PRODUCTION = REACH_ENV == "production"
DEBUG = env.bool("DEBUG", default=False)
if PRODUCTION and DEBUG:  # the debug pages would show settings and tracebacks to the world
    raise ImproperlyConfigured("DEBUG must be off when REACH_ENV=production")

_DEV_SECRET = "reach-development-only-secret-key-do-not-use-in-production"
_DEV_APP_SECRET = "reach-dev-app-secret"


def _required_in_production(name: str, dev_default: str) -> str:
    value = env.str(name, default="")
    if value:
        return value
    if PRODUCTION:
        raise ImproperlyConfigured(f"{name} must be set when REACH_ENV=production")
    return dev_default


SECRET_KEY = _required_in_production("SECRET_KEY", _DEV_SECRET)
if PRODUCTION and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured("SECRET_KEY is the development default; set a real one")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver", "[::1]"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when REACH_ENV=production")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
REACH_PUBLIC_URL = env.str("REACH_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Data stores -------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="")
REDIS_URL = env.str("REDIS_URL", default="")
if PRODUCTION and (not DATABASE_URL or not REDIS_URL):
    raise ImproperlyConfigured("DATABASE_URL and REDIS_URL must be set when REACH_ENV=production")
EMBEDDED = not REDIS_URL

if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "reach.sqlite3"),
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
            },
            "TEST": {"NAME": str(VAR_DIR / "test.sqlite3")},
        }
    }
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite is shared by the web, worker and beat threads: wait for locks instead of failing at once, and
    # take the write lock at BEGIN (a deferred read->write upgrade fails with "database is locked" at once).
    _sqlite_options = DATABASES["default"].setdefault("OPTIONS", {})
    _sqlite_options.setdefault("timeout", 20)
    _sqlite_options.setdefault("transaction_mode", "IMMEDIATE")
    _sqlite_options.setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
    )
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
DATABASES["default"]["ATOMIC_REQUESTS"] = False
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
# Under Daphne every request runs in its own thread, so persistent connections leak, and without them every
# request (and every Celery task) pays a new PostgreSQL backend: ~5 ms to connect plus its cold catalog
# caches (measured: an inbound message took 42 ms from POST to commit that way, 25 ms pooled). So PostgreSQL
# uses Django's bounded psycopg pool per process by default (requests wait for a pooled connection);
# DATABASE_POOL_MAX_SIZE=0 turns it off. CONN_MAX_AGE must stay 0 with it.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=20 if IS_POSTGRES else 0)
if IS_POSTGRES and DATABASE_POOL_MAX_SIZE > 0:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1, "max_size": DATABASE_POOL_MAX_SIZE, "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Apps ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "axes",
    "apps.core",
    "apps.providers",
    "apps.wabas",
    "apps.contacts",
    "apps.message_templates",
    "apps.billing",
    "apps.links",
    "apps.conversations",
    "apps.campaigns",
    "apps.webhooks",
    "apps.console",
    "apps.reports",
]
if IS_POSTGRES:
    INSTALLED_APPS.append("django.contrib.postgres")

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.ApiBodyLimitMiddleware",
    "apps.core.middleware.ApiInputGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.ApiErrorMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out sign-in into 429
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out (username, address) before the password
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "reach.urls"
ASGI_APPLICATION = "reach.asgi.application"
WSGI_APPLICATION = None
AUTH_USER_MODEL = "core.User"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/inbox/"
LOGOUT_REDIRECT_URL = "/login/"

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
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
# The console speaks these; a browser's Accept-Language or the top bar's choice picks one. Catalogues:
# locale/<lang>/LC_MESSAGES/django.po, compiled by `make messages` (manage.py compilemessages).
LANGUAGES = [("en", "English"), ("pt-br", "Português (Brasil)")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
if not PRODUCTION:  # WhiteNoise serves from the finders in development; an absent root only makes it warn
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "/media-files/"  # never served directly: media goes through workspace-checked views
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Security ------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True

# Fernet key for access tokens at rest; derived from SECRET_KEY only outside production.
_encryption_key = env.str("REACH_ENCRYPTION_KEY", default="")
if not _encryption_key:
    if PRODUCTION:
        raise ImproperlyConfigured("REACH_ENCRYPTION_KEY must be set when REACH_ENV=production")
    _encryption_key = base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
REACH_ENCRYPTION_KEY = _encryption_key

# --- API ---------------------------------------------------------------------------------
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1 * 1024 * 1024)
API_MAX_UPLOAD_BYTES = env.int("API_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.core.authentication.ApiKeyAuthentication",
        "apps.core.authentication.WorkspaceSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.core.permissions.HasTenant"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.api.parsers.StrictJSONParser",
        "apps.core.api.parsers.StrictMultiPartParser",
        "apps.core.api.parsers.StrictFormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.ReachAutoSchema",
    "EXCEPTION_HANDLER": "apps.core.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%SZ",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Reach API",
    "DESCRIPTION": """Self-hostable WhatsApp Business messaging platform.

## Try it with your sandbox key
Every workspace has a **sandbox** twin served by a built-in Meta simulator. Take your `ak_test_…` key (`make run`
prints one; more in the admin under *API keys*), open [the console](/api/docs/try), press *Authorize* and paste it.
1. `POST /api/v1/sandbox/inbound` — a customer writes first (opens the 24-hour window).
2. `POST /api/v1/messages` — reply; 202 with status `queued`, then the simulator reports sent → delivered → read.
3. `GET /api/v1/messages/{id}` — follow it, or subscribe a webhook to `message.*` events.

## Conventions
`Authorization: Bearer <key>` on every call. JSON, snake_case, ISO-8601 UTC with `Z`, prefixed ULID ids. Every
error uses one envelope, `{"error": {"code", "message", "details", "request_id"}}` (the response components
below). Every POST, PATCH and DELETE accepts `Idempotency-Key`. Lists are cursor-paginated (`limit`, `cursor`,
`next_cursor`). Clients: see the README (openapi-python-client, openapi-typescript).""",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and docs are public, like the contract they describe.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "REDOC_DIST": "SIDECAR",  # bundled with the app, not fetched from a CDN
    "REDOC_UI_SETTINGS": {"expandResponses": "200,201,202", "pathInMiddlePanel": True, "jsonSampleExpandLevel": 3},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "tryItOutEnabled": True, "displayOperationId": True},
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "OAS_VERSION": "3.1.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {"ApiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "ak_live_… / ak_test_…"}}
    },
    "SECURITY": [{"ApiKey": []}],
    "POSTPROCESSING_HOOKS": [
        "apps.core.schema.add_error_responses",
        "apps.core.schema.add_event_types",
    ],
}

# Requests per minute and per 10-second burst, per API key, by workspace plan. The burst follows the minute
# limit (a quarter of it) unless RATE_LIMIT_<PLAN>_BURST_10S says otherwise.
def _rate_plan(name: str, per_minute: int) -> dict[str, int]:
    per_minute = env.int(f"RATE_LIMIT_{name}_PER_MINUTE", default=per_minute)
    return {"per_minute": per_minute, "burst_10s": env.int(f"RATE_LIMIT_{name}_BURST_10S", default=max(1, per_minute // 4))}


RATE_LIMIT_PLANS = {
    "free": _rate_plan("FREE", 600),
    "standard": _rate_plan("STANDARD", 6000),
    "enterprise": _rate_plan("ENTERPRISE", 60000),
}
# Failed API-key authentications (401) per client address: a bucket of this many, refilled over a minute;
# past it the address gets 429 RATE_LIMITED with Retry-After instead of 401 (valid keys are never counted).
API_AUTH_FAILURES_PER_MINUTE = env.int("API_AUTH_FAILURES_PER_MINUTE", default=30)
# Browser sign-in (/login/ and the admin's): django-axes locks a (username, address) pair out after this many
# failed passwords in a row, for AXES_COOLOFF_MINUTES; a success resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "apps.core.ratelimit.client_address"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"  # the sign-in card saying why and for how long

# A process takes rate-limit units from Redis in leases of up to this many while far from the limit
# (apps/core/ratelimit.py); 1 = one Redis round trip per request.
RATE_LIMIT_LEASE_UNITS = env.int("RATE_LIMIT_LEASE_UNITS", default=16)
RATE_LIMIT_LEASE_SECONDS = env.float("RATE_LIMIT_LEASE_SECONDS", default=1.0)
IDEMPOTENCY_TTL_SECONDS = env.int("IDEMPOTENCY_TTL_SECONDS", default=24 * 3600)
# A key claimed by a request that never answered (its process died) is free again after this long; until
# then a retry with it is 409. Nothing of that request was written (the answer commits with its writes).
IDEMPOTENCY_IN_FLIGHT_SECONDS = env.int("IDEMPOTENCY_IN_FLIGHT_SECONDS", default=300)
# Beat schedules a tiny task this often; its stamp (age shown by /readyz) proves beat, broker and worker run.
BACKGROUND_HEARTBEAT_SECONDS = env.float("BACKGROUND_HEARTBEAT_SECONDS", default=10.0)
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60

# --- Redis, channels, celery ---------------------------------------------------------------
if EMBEDDED:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 5000}}}
elif env.str("CHANNEL_LAYER", default="pubsub") == "lists":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                # channels-redis silently drops past capacity; sized for bursts of a busy inbox.
                "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=5000),
                "expiry": 60,
                "group_expiry": 86400,
            },
        }
    }
else:
    # Redis pub/sub (channels-redis's own RedisPubSubChannelLayer): a push is one PUBLISH that reaches each
    # web process once, and the process hands it to its sockets in memory; the list layer ("lists") keeps a
    # copy per socket in Redis and pops them one round trip each. At 100 inbound/s with 20 agents on one
    # workspace: p99 43-48 ms against 51-72 (bench/inbox_latency.py), a fifth less CPU where the sockets are.
    # Pub/sub keeps nothing for a process that is not listening; a browser fills any gap from the event log by
    # sequence (apps/conversations/consumers.py), as after any lost push.
    # Pub/sub channels are server-wide, not per Redis database: the prefix keeps installs that share one Redis
    # on different databases apart, as the list layer's keys are.
    _redis_db = (urlparse(REDIS_URL).path or "/0").strip("/") or "0"
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
                                  "CONFIG": {"hosts": [REDIS_URL], "prefix": f"asgi:{_redis_db}:"}}}

# Operator inbox: how far back a reconnecting browser may replay before it must reload
# state; the default per-conversation auto-reply cooldown.
INBOX_RESUME_MAX_EVENTS = env.int("INBOX_RESUME_MAX_EVENTS", default=2000)
INBOX_HEARTBEAT_SECONDS = env.int("INBOX_HEARTBEAT_SECONDS", default=20)
# An agent counts as online (for presence and round-robin assignment) this long after their last heartbeat.
INBOX_PRESENCE_TIMEOUT_SECONDS = env.int("INBOX_PRESENCE_TIMEOUT_SECONDS", default=90)
# Show customers WhatsApp's "typing…" while an agent types (Meta's typing_indicator on a read receipt).
INBOX_TYPING_INDICATOR = env.bool("INBOX_TYPING_INDICATOR", default=True)
# At most one push round per this many ms: after a quiet spell an event leaves at once; under load what
# arrives until the next round leaves in it, one channel-layer message per workspace. 5, not 20: at 100
# inbound/s with 20 agents the push road's p50 is 6-7 ms instead of 16-17 (bench/inbox_latency.py), for
# about a fifth more CPU in the process holding the sockets.
INBOX_PUSH_LINGER_MS = env.float("INBOX_PUSH_LINGER_MS", default=5.0)
AUTO_REPLY_DEFAULT_COOLDOWN_SECONDS = env.int("AUTO_REPLY_DEFAULT_COOLDOWN_SECONDS", default=3600)

# "memory://localhost/" (not "memory://") keeps kombu from warning about a missing hostname.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost/")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Periodic jobs, keyed by name; apps add theirs in their AppConfig.ready() through
# apps.core.periodic.register().
CELERY_BEAT_SCHEDULE: dict = {}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Meta upstream ----------------------------------------------------------------------------
META_GRAPH_URL = env.str("META_GRAPH_URL", default="https://graph.facebook.com").rstrip("/")
META_GRAPH_VERSION = env.str("META_GRAPH_VERSION", default="v23.0")
META_HTTP_TIMEOUT = env.float("META_HTTP_TIMEOUT", default=10.0)
META_APP_SECRET = _required_in_production("META_APP_SECRET", _DEV_APP_SECRET)
# Embedded Signup (the console's "Connect with Facebook"): the Meta app id and the Embedded Signup
# configuration id. Without both, the console offers the code exchange and the manual form only.
META_APP_ID = env.str("META_APP_ID", default="")
META_EMBEDDED_SIGNUP_CONFIG_ID = env.str("META_EMBEDDED_SIGNUP_CONFIG_ID", default="")
META_VERIFY_TOKEN = _required_in_production("META_VERIFY_TOKEN", "reach-dev-verify-token")
DEFAULT_THROUGHPUT_MPS = env.int("DEFAULT_THROUGHPUT_MPS", default=80)
# Meta's automatic throughput upgrade (phone_number_quality_update THROUGHPUT_UPGRADE), META.md §5.
UPGRADED_THROUGHPUT_MPS = env.int("UPGRADED_THROUGHPUT_MPS", default=1000)
CUSTOMER_SERVICE_WINDOW_HOURS = env.int("CUSTOMER_SERVICE_WINDOW_HOURS", default=24)

# --- Simulator (apps/providers/simulator): the fake Meta's numbers, all overridable -------------
# Read by SimConfig.from_settings (SIMULATOR_<FIELD>); the fakemeta command's flags override them.
SIMULATOR_APPROVE_DELAY = env.float("SIMULATOR_APPROVE_DELAY", default=2.0)  # template review, seconds
SIMULATOR_SENT_DELAY = env.float("SIMULATOR_SENT_DELAY", default=0.05)
SIMULATOR_DELIVERED_DELAY = env.float("SIMULATOR_DELIVERED_DELAY", default=0.3)
SIMULATOR_READ_DELAY = env.float("SIMULATOR_READ_DELAY", default=1.0)
SIMULATOR_SKIP_DELIVERED_PROBABILITY = env.float("SIMULATOR_SKIP_DELIVERED_PROBABILITY", default=0.1)
SIMULATOR_PAIR_LIMIT_ENABLED = env.bool("SIMULATOR_PAIR_LIMIT_ENABLED", default=True)
SIMULATOR_MEDIA_URL_TTL = env.float("SIMULATOR_MEDIA_URL_TTL", default=300.0)
# In-process sandbox: templates the simulator never saw are accepted (Reach already checked them locally).
SIMULATOR_INPROCESS_STRICT_TEMPLATES = env.bool("SIMULATOR_INPROCESS_STRICT_TEMPLATES", default=False)

# --- SMS (apps/providers/sms): live workspaces use SMS_GATEWAY; sandbox workspaces always the simulator ----
SMS_GATEWAY = env.str("SMS_GATEWAY", default="simulator")  # simulator | twilio | http | dotted.path.Class
SMS_DEFAULT_SENDER = env.str("SMS_DEFAULT_SENDER", default="")  # From when a message names no sender
SMS_HTTP_TIMEOUT = env.float("SMS_HTTP_TIMEOUT", default=10.0)
SMS_SIMULATOR_PRICE_PER_SEGMENT = Decimal(env.str("SMS_SIMULATOR_PRICE_PER_SEGMENT", default="0.0079"))
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")  # also validates X-Twilio-Signature
TWILIO_API_URL = env.str("TWILIO_API_URL", default="https://api.twilio.com").rstrip("/")
TWILIO_MESSAGING_SERVICE_SID = env.str("TWILIO_MESSAGING_SERVICE_SID", default="")
SMS_HTTP_URL = env.str("SMS_HTTP_URL", default="")
SMS_HTTP_AUTH_HEADER = env.str("SMS_HTTP_AUTH_HEADER", default="")  # e.g. "Bearer <token>"
SMS_HTTP_WEBHOOK_SECRET = env.str("SMS_HTTP_WEBHOOK_SECRET", default="")
SMS_HTTP_FIELDS = env.json("SMS_HTTP_FIELDS", default={})  # {"to": "to", "text": "text", "sender": "from"}
SMS_HTTP_EXTRA = env.json("SMS_HTTP_EXTRA", default={})
SMS_HTTP_RESPONSE = env.json("SMS_HTTP_RESPONSE", default={})  # {"id": "id", "segments": …, "price": …}
SMS_HTTP_RECEIPT = env.json("SMS_HTTP_RECEIPT", default={})
SMS_HTTP_STATUS_MAP = env.json("SMS_HTTP_STATUS_MAP", default={})
SMS_HTTP_INBOUND = env.json("SMS_HTTP_INBOUND", default={})
# --- Email channel (apps/providers/email): outbound over SMTP through Django's email backend; a workspace's
# email channel may name its own SMTP server (password encrypted), else these are used.
# The channel's own backend setting (not EMAIL_BACKEND, which test runners swap for an in-memory one).
EMAIL_CHANNEL_BACKEND = env.str("EMAIL_CHANNEL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)  # STARTTLS
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)  # implicit TLS (port 465)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
# Inbound: "host:port" for the SMTP listener `manage.py serve` starts (aiosmtpd); empty = off (the default,
# embedded or not: a listener on port 25 is an operator's decision). Mail is accepted only for the inbound
# addresses (or domains) of configured email channels.
EMAIL_INBOUND_LISTEN = env.str("EMAIL_INBOUND_LISTEN", default="")
EMAIL_INBOUND_MAX_BYTES = env.int("EMAIL_INBOUND_MAX_BYTES", default=25 * 1024 * 1024)
# --- Mobile API: user tokens and FCM push ---------------------------------------------------------------
AUTH_TOKEN_ATTEMPTS_PER_MINUTE = env.int("AUTH_TOKEN_ATTEMPTS_PER_MINUTE", default=10)  # per address, per username
FCM_SERVICE_ACCOUNT_JSON = env.str("FCM_SERVICE_ACCOUNT_JSON", default="")  # the JSON itself, or a file path
FCM_API_URL = env.str("FCM_API_URL", default="https://fcm.googleapis.com").rstrip("/")
FCM_HTTP_TIMEOUT = env.float("FCM_HTTP_TIMEOUT", default=10.0)
# fallback {"after": "undelivered", "wait_seconds": N}: the bounds of N
FALLBACK_WAIT_MIN_SECONDS = env.int("FALLBACK_WAIT_MIN_SECONDS", default=10)
FALLBACK_WAIT_MAX_SECONDS = env.int("FALLBACK_WAIT_MAX_SECONDS", default=72 * 3600)

# --- Send pipeline (dispatcher) ---------------------------------------------------------------------
DISPATCH_MAX_AGE_SECONDS = env.int("DISPATCH_MAX_AGE_SECONDS", default=24 * 3600)  # then failed as expired
# Click-to-WhatsApp entry: a reply within this many hours opens the free entry point window of this length.
FREE_ENTRY_POINT_REPLY_HOURS = env.float("FREE_ENTRY_POINT_REPLY_HOURS", default=24.0)
FREE_ENTRY_POINT_HOURS = env.float("FREE_ENTRY_POINT_HOURS", default=72.0)
# 131049 (Meta's per-user marketing limit): send again after these hours (a growing schedule; Meta says not
# before 24 h), while the message is still valid (a campaign's validity window); then it fails.
PER_USER_MARKETING_RETRY_HOURS = env.list("PER_USER_MARKETING_RETRY_HOURS", cast=float, default=[24.0, 48.0, 96.0])
DISPATCH_LEASE_SECONDS = env.int("DISPATCH_LEASE_SECONDS", default=60)  # a claim's lease
# A claim whose lease ran out may have reached Meta (the worker died between the call and recording it): it
# waits this long past the lease for a status webhook carrying its id (biz_opaque_callback_data) before
# it may be sent again (apps/conversations/services/dispatch/sweep.py).
DISPATCH_RECONCILE_SECONDS = env.int("DISPATCH_RECONCILE_SECONDS", default=120)
DISPATCH_DRAIN_SECONDS = env.float("DISPATCH_DRAIN_SECONDS", default=30.0)  # one task's budget
DISPATCH_SWEEP_SECONDS = env.int("DISPATCH_SWEEP_SECONDS", default=2)
# On-commit dispatch kicks are rung by one background thread per process, batched, instead of by the
# committing request (apps/conversations/services/dispatch/kicks.py).
DISPATCH_KICK_LINGER_MS = env.float("DISPATCH_KICK_LINGER_MS", default=10.0)  # a background round gathers for this
DISPATCH_BACKOFF_BASE_SECONDS = env.float("DISPATCH_BACKOFF_BASE_SECONDS", default=2.0)
DISPATCH_BACKOFF_MAX_SECONDS = env.float("DISPATCH_BACKOFF_MAX_SECONDS", default=900.0)
DISPATCH_BUCKET_BURST_SECONDS = env.float("DISPATCH_BUCKET_BURST_SECONDS", default=0.01)  # burst = cap x this
DISPATCH_PACE_MARGIN = env.float("DISPATCH_PACE_MARGIN", default=0.01)  # share of the cap left unused per second
DISPATCH_RATE_FACTOR = env.float("DISPATCH_RATE_FACTOR", default=1.0)  # fraction of throughput_mps used
DISPATCH_PAIR_INTERVAL_SECONDS = env.float("DISPATCH_PAIR_INTERVAL_SECONDS", default=6.0)  # Meta: 1 msg / 6 s
DISPATCH_PAIR_BURST = env.int("DISPATCH_PAIR_BURST", default=20)
MESSAGE_SCHEDULE_MAX_DAYS = env.int("MESSAGE_SCHEDULE_MAX_DAYS", default=30)

# Receive road: POST /webhooks/meta limits, the stored-webhook queue's lease, retries and
# sweeper, and how long a status may wait for the dispatcher to record its wamid.
META_WEBHOOK_MAX_BYTES = env.int("META_WEBHOOK_MAX_BYTES", default=3 * 1024 * 1024)
INBOUND_WEBHOOK_LEASE_SECONDS = env.int("INBOUND_WEBHOOK_LEASE_SECONDS", default=120)
INBOUND_WEBHOOK_MAX_ATTEMPTS = env.int("INBOUND_WEBHOOK_MAX_ATTEMPTS", default=12)
INBOUND_WEBHOOK_RETRY_BASE_SECONDS = env.float("INBOUND_WEBHOOK_RETRY_BASE_SECONDS", default=10.0)
INBOUND_WEBHOOK_SWEEP_SECONDS = env.float("INBOUND_WEBHOOK_SWEEP_SECONDS", default=5.0)
INBOUND_WEBHOOK_SWEEP_BATCH = env.int("INBOUND_WEBHOOK_SWEEP_BATCH", default=200)
INBOUND_WEBHOOK_DRAIN_BATCH = env.int("INBOUND_WEBHOOK_DRAIN_BATCH", default=50)
INBOUND_WEBHOOK_DRAINERS = env.int("INBOUND_WEBHOOK_DRAINERS", default=4)  # parallel drain tasks under a backlog
# A drain out of rows waits this long for the next webhook's ring before it ends (below Redis's 5 s socket
# timeout): steady traffic then skips the broker hop a fresh drain task costs. 0 ends at once.
INBOUND_WEBHOOK_DRAIN_IDLE_SECONDS = env.float("INBOUND_WEBHOOK_DRAIN_IDLE_SECONDS", default=1.0)
INBOUND_WEBHOOK_MAX_COUNTDOWN_SECONDS = env.float("INBOUND_WEBHOOK_MAX_COUNTDOWN_SECONDS", default=300.0)
INBOUND_WEBHOOK_INGEST_THREADS = env.int("INBOUND_WEBHOOK_INGEST_THREADS", default=8)  # ASGI fast path
# The web process may apply the Meta webhooks it stored itself (apps/webhooks/applier.py), through the same
# claim and lease as the worker; the worker and the sweeper stay the fallback. Off by default: on the 2-core
# bench box it measured worse than the worker (bench/inbox_latency.py at 100/s, p99 214-674 ms against
# 152-327 ms), as accepting and applying then share one process's GIL. Worth trying where web processes have
# cores to spare.
INBOUND_APPLY_IN_WEB = env.bool("INBOUND_APPLY_IN_WEB", default=False)
INBOUND_APPLY_IN_WEB_MAX_PENDING = env.int("INBOUND_APPLY_IN_WEB_MAX_PENDING", default=500)  # then ring the worker
# Routes whose synchronous handling runs on a thread pool under ASGI (apps/core/asgi_handler.py), PostgreSQL only.
API_THREADED_PATHS = env.list("API_THREADED_PATHS", default=["/api/v1/messages"])
API_THREADS = env.int("API_THREADS", default=3)
# SIGTERM/SIGINT: stop accepting, let requests in flight finish for up to this long, then stop
# (apps/core/runtime/shutdown.py); the in-process worker gets the same bound to finish its tasks.
SHUTDOWN_GRACE_SECONDS = env.float("SHUTDOWN_GRACE_SECONDS", default=10.0)
# How long a process may reuse an authenticated API key without reading it again (revocations: see below).
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=30.0)
# How long a process trusts the key generation it last read from Redis (how late it sees another's revocation).
API_KEY_GENERATION_CHECK_SECONDS = env.float("API_KEY_GENERATION_CHECK_SECONDS", default=0.5)
INBOUND_WEBHOOK_RETENTION_DAYS = env.int("INBOUND_WEBHOOK_RETENTION_DAYS", default=30)  # processed rows
INBOUND_STATUS_ORPHAN_GRACE_SECONDS = env.float("INBOUND_STATUS_ORPHAN_GRACE_SECONDS", default=120.0)
INBOUND_STATUS_ORPHAN_RETRY_SECONDS = env.float("INBOUND_STATUS_ORPHAN_RETRY_SECONDS", default=2.0)
INBOUND_MEDIA_RETRY_BASE_SECONDS = env.float("INBOUND_MEDIA_RETRY_BASE_SECONDS", default=30.0)
INBOUND_MEDIA_RETRY_FOR_SECONDS = env.int("INBOUND_MEDIA_RETRY_FOR_SECONDS", default=7 * 24 * 3600)  # Meta's media id TTL

# Campaigns: messaging-tier limits (unique recipients outside a window per moving 24 h;
# Meta changes these), pacing of the campaign pump, auto-pause, CSV audience limits.
CAMPAIGN_TIER_LIMITS = {
    "TIER_250": env.int("CAMPAIGN_TIER_250", default=250),
    "TIER_1K": env.int("CAMPAIGN_TIER_1K", default=1000),
    "TIER_2K": env.int("CAMPAIGN_TIER_2K", default=2000),
    "TIER_10K": env.int("CAMPAIGN_TIER_10K", default=10000),
    "TIER_100K": env.int("CAMPAIGN_TIER_100K", default=100000),
    "TIER_UNLIMITED": None,
}
CAMPAIGN_BATCH_SIZE = env.int("CAMPAIGN_BATCH_SIZE", default=500)
CAMPAIGN_IN_FLIGHT_SECONDS = env.float("CAMPAIGN_IN_FLIGHT_SECONDS", default=5.0)  # queue depth, in seconds of mps
CAMPAIGN_MIN_IN_FLIGHT = env.int("CAMPAIGN_MIN_IN_FLIGHT", default=200)
CAMPAIGN_PUMP_SECONDS = env.float("CAMPAIGN_PUMP_SECONDS", default=50.0)
CAMPAIGN_PUMP_IDLE_SECONDS = env.float("CAMPAIGN_PUMP_IDLE_SECONDS", default=0.25)
CAMPAIGN_CHECK_SECONDS = env.float("CAMPAIGN_CHECK_SECONDS", default=2.0)
CAMPAIGN_TICK_SECONDS = env.float("CAMPAIGN_TICK_SECONDS", default=5.0)
# Extra hand-out workers per fast campaign. 0: a batch is one set-based statement (~0.15 s per 1,000 recipients),
# so the pump alone keeps a 1,000 mps number fed, and a feeder would only take a core from the dispatchers.
CAMPAIGN_PUMP_FEEDERS = env.int("CAMPAIGN_PUMP_FEEDERS", default=0)
# PostgreSQL: hand batches out in one set-based statement (False: recipient by recipient in Python, as on SQLite).
CAMPAIGN_HAND_OUT_SQL = env.bool("CAMPAIGN_HAND_OUT_SQL", default=True)

# Billing (API.md "Money"): the wallet's currency, the opening balance of a new live wallet (a ledger
# `topup`), the sandbox twin's play money, the default low-balance threshold, and the markup per plan
# (a fraction on top of Meta's rate card price).
BILLING_CURRENCY = env.str("BILLING_CURRENCY", default="USD")
BILLING_OPENING_BALANCE = env.str("BILLING_OPENING_BALANCE", default="0")
BILLING_SANDBOX_BALANCE = env.str("BILLING_SANDBOX_BALANCE", default="100.0000")
BILLING_LOW_BALANCE_THRESHOLD = env.str("BILLING_LOW_BALANCE_THRESHOLD", default="1.0000")
BILLING_PLAN_MARKUP = {"free": "0.20", "standard": "0.10", "enterprise": "0.05"}
# Reports: how often the rollups catch up with the event log.
REPORTS_ROLLUP_SECONDS = env.int("REPORTS_ROLLUP_SECONDS", default=5)
CAMPAIGN_AUTO_PAUSE_FAILURE_RATE = env.float("CAMPAIGN_AUTO_PAUSE_FAILURE_RATE", default=0.2)
CAMPAIGN_AUTO_PAUSE_MIN_ATTEMPTS = env.int("CAMPAIGN_AUTO_PAUSE_MIN_ATTEMPTS", default=50)
CAMPAIGN_AUDIENCE_CSV_MAX_ROWS = env.int("CAMPAIGN_AUDIENCE_CSV_MAX_ROWS", default=200_000)
CAMPAIGN_AUDIENCE_CSV_MAX_REJECTED = env.int("CAMPAIGN_AUDIENCE_CSV_MAX_REJECTED", default=1000)

# --- Contacts and templates ------------------------------------------------------------------------
# CSV uploads up to this size are imported inside the request; bigger ones (or ?async=true) run in a task and
# answer 202 with the import's id and progress (a 50 MB import took minutes: no request should wait that long).
CONTACT_IMPORT_SYNC_MAX_BYTES = env.int("CONTACT_IMPORT_SYNC_MAX_BYTES", default=4 * 1024 * 1024)
# How often the beat job pulls every WABA's templates from Meta (webhooks are the fast path).
TEMPLATE_SYNC_INTERVAL_SECONDS = env.int("TEMPLATE_SYNC_INTERVAL_SECONDS", default=3600)

# --- Outbound webhooks --------------------------------------------------------------------
REACH_ALLOW_HTTP_WEBHOOKS = env.bool("REACH_ALLOW_HTTP_WEBHOOKS", default=False)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_RETRY_SCHEDULE_SECONDS = env.list(
    "WEBHOOK_RETRY_SCHEDULE_SECONDS",
    cast=int,
    default=[5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
)
# Outbound delivery engine: jitter, leases, worker sizing, retention.
WEBHOOK_RETRY_JITTER = env.float("WEBHOOK_RETRY_JITTER", default=0.2)
WEBHOOK_RESPONSE_EXCERPT_BYTES = env.int("WEBHOOK_RESPONSE_EXCERPT_BYTES", default=4096)
WEBHOOK_LEASE_SECONDS = env.float("WEBHOOK_LEASE_SECONDS", default=60.0)
WEBHOOK_WORKER_CONCURRENCY = env.int("WEBHOOK_WORKER_CONCURRENCY", default=256)
WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = env.int("WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION", default=128)
WEBHOOK_WORKER_POLL_SECONDS = env.float("WEBHOOK_WORKER_POLL_SECONDS", default=0.05)
# The outbound worker sends from a forked HTTP process of its own (PostgreSQL; not inside a transaction)
WEBHOOK_WORKER_HTTP_PROCESS = env.bool("WEBHOOK_WORKER_HTTP_PROCESS", default=True)
WEBHOOK_PAYLOAD_RETENTION_DAYS = env.int("WEBHOOK_PAYLOAD_RETENTION_DAYS", default=30)
WEBHOOK_DISABLE_AFTER_FAILING_DAYS = env.float("WEBHOOK_DISABLE_AFTER_FAILING_DAYS", default=5)
WEBHOOK_SECRET_OVERLAP_HOURS = env.float("WEBHOOK_SECRET_OVERLAP_HOURS", default=24)
WEBHOOK_REDELIVER_MAX_DAYS = env.int("WEBHOOK_REDELIVER_MAX_DAYS", default=14)
WEBHOOK_MAX_RETRY_AFTER_SECONDS = env.int("WEBHOOK_MAX_RETRY_AFTER_SECONDS", default=86400)
WEBHOOK_SWEEP_SECONDS = env.float("WEBHOOK_SWEEP_SECONDS", default=5.0)
# How long the after-commit fast path remembers whether a workspace has subscriptions (the sweep covers the gap).
WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS = env.float("WEBHOOK_SUBSCRIPTIONS_CACHE_SECONDS", default=2.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
        "celery": {"level": "WARNING"},
    },
}
