"""Settings of the AX Integration Hub, read from the environment (see README)."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_int, env_list, env_networks, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("AX_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in var/.

    The embedded default needs no configuration, yet never runs on a key that is the
    same for every installation.
    """
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
WEB_THREADS = env_int("WEB_THREADS", 8, minimum=1)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "django_htmx",
    "template_partials",
    "django_q",
    "core.accounts",
    "core.audit",
    "core.erp",
    "core.tools",
    "core.events",
    "core.webhooks",
    "core.imports",
    "core.roi",
    "core.api",
    "core.ops",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.api.guard.TokenGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"
ASGI_APPLICATION = "core.asgi.application"

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
                "dashboard.context.nav",
            ],
        },
    },
]

# Database: SQLite file by default (WAL, busy timeout, IMMEDIATE transactions so that
# concurrent writers queue instead of failing), PostgreSQL through DATABASE_URL.
_default_db = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
try:
    _db = dj_database_url.parse(env_str("DATABASE_URL") or _default_db,
                                conn_max_age=env_int("CONN_MAX_AGE", 600, minimum=0), conn_health_checks=True)
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000; "
                        f"PRAGMA wal_autocheckpoint={env_int('SQLITE_WAL_AUTOCHECKPOINT', 4000, minimum=0)};",
    }
    # A file (not :memory:) so threads and subprocesses in tests share it; one per process so
    # two test runs on one machine never share a database.
    _db["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    # One test database per process here too, so two test runs against one server never collide.
    _db["TEST"] = {"NAME": f"test_{_db['NAME']}_{os.getpid()}"}
DATABASES = {"default": _db}
USING_SQLITE = _db["ENGINE"] == "django.db.backends.sqlite3"
# WAL checkpoints run on a background thread of each process, every this many ms (0: off,
# SQLite then checkpoints inside commits once the WAL holds SQLITE_WAL_AUTOCHECKPOINT pages).
SQLITE_CHECKPOINT_MS = env_int("SQLITE_CHECKPOINT_MS", 100, minimum=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: holds rate-limit windows and circuit-breaker state. With REDIS_URL it is shared by
# every process on every host; without it each process keeps its own.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL and not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured("REDIS_URL must start with redis://, rediss:// or unix://")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "axhub"}}

# The worker (README "Running it in production"): how often it beats and probes its
# cluster, after how many seconds of a waiting probe with idle workers it restarts the
# cluster, and how long SIGTERM waits for running tasks before it ends them.
WORKER_PROBE_SECONDS = env_int("WORKER_PROBE_SECONDS", 5, minimum=1)
WORKER_STALL_SECONDS = env_int("WORKER_STALL_SECONDS", 30, minimum=5)
WORKER_STOP_GRACE_SECONDS = env_int("WORKER_STOP_GRACE_SECONDS", 3, minimum=0)
# A process whose heartbeat is older than this many seconds counts as gone.
HEARTBEAT_STALE_SECONDS = env_int("HEARTBEAT_STALE_SECONDS", 30, minimum=5)
# Health (`manage.py health`, /healthz): the oldest queued task and the oldest due webhook
# delivery may wait this long before the hub counts as unhealthy.
HEALTH_MAX_TASK_WAIT_SECONDS = env_int("HEALTH_MAX_TASK_WAIT_SECONDS", 300, minimum=1)
HEALTH_MAX_DELIVERY_WAIT_SECONDS = env_int("HEALTH_MAX_DELIVERY_WAIT_SECONDS", 300, minimum=1)

Q_CLUSTER = {
    "name": "axhub",
    "workers": env_int("Q_WORKERS", 2, minimum=1),
    "timeout": env_int("Q_TIMEOUT", 600, minimum=1),
    "retry": env_int("Q_TIMEOUT", 600, minimum=1) + 60,
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.1

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Log-in throttling (django-axes, README "Security"): after LOGIN_FAILURE_LIMIT wrong passwords
# for one username from one address, that username is locked out from that address for
# LOGIN_LOCKOUT_MINUTES (a try during the lockout starts them again); a successful log-in
# clears the count. A username that does not exist counts and is answered the same, so the
# lockout never tells who has an account. Attempts and log-ins are listed in the admin.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client's address is the connection's (REMOTE_ADDR): the web server (uvicorn) replaces it
# with X-Forwarded-For only for a proxy in FORWARDED_ALLOW_IPS, so a client cannot pick its own.
AXES_CLIENT_IP_CALLABLE = "core.accounts.throttle.client_address"
AXES_LOCKOUT_CALLABLE = "dashboard.lockout.locked_out"
AXES_SENSITIVE_PARAMETERS = ["username", "csrfmiddlewaretoken"]  # the address is logged, for an operator
AXES_VERBOSE = False  # no banner on every start of every command
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every start without it
STATICFILES_DIRS = [BASE_DIR / "static"]
# Static files (README "Static files"): `collectstatic` (make run runs it, and so must every
# deployment) copies them to STATIC_ROOT with a content hash in each name, gzip and brotli
# compressed beside, and writes the manifest {% static %} reads; WhiteNoise serves the hashed
# names cached for a year. WhiteNoise serves only what was collected, compressed also where
# DEBUG names files without their hash (make run). Tests read the source folders instead
# (tests/conftest.py).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# HTTPS deployments (README "Security"): HTTPS=1 marks the cookies Secure, sends HSTS and
# redirects plain HTTP to HTTPS; each setting can also be set on its own. /healthz answers over
# plain HTTP too, for health checks from inside the network.
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if SECURE_HSTS_SECONDS and not SECURE_HSTS_PRELOAD:
    # Preloading commits the whole domain to HTTPS in every browser, for months: a decision for
    # the domain's owner, so asking for it is opt-in and not a deployment warning.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Trust the proxy's X-Forwarded-Proto: https for request.is_secure(). Only behind a proxy that
# sets it on every request; uvicorn already does the same for proxies in FORWARDED_ALLOW_IPS.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SECURE_PROXY_SSL_HEADER") else None
# Content-Security-Policy on every answer (django-csp, README "Security"): scripts, styles,
# images and requests only from the hub itself; no inline script, no inline style, no eval.
# The ROI page adds the hashes of the <style> elements plotly.js makes (dashboard/vendor.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# The hub's own knobs.
RATE_LIMIT_PER_MINUTE = env_int("RATE_LIMIT_PER_MINUTE", 600, minimum=0)
# Failed API-token authentications (README "Security"): an address that fails this many times
# within one window of API_AUTH_FAILURE_WINDOW_SECONDS gets 429 RATE_LIMITED on /api/ and /mcp
# until the window ends, before any token is looked up (0: no limit). Counted in the cache.
API_AUTH_FAILURE_LIMIT = env_int("API_AUTH_FAILURE_LIMIT", 20, minimum=0)
API_AUTH_FAILURE_WINDOW_SECONDS = env_int("API_AUTH_FAILURE_WINDOW_SECONDS", 300, minimum=1)
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 20 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
IDEMPOTENCY_TTL_HOURS = env_int("IDEMPOTENCY_TTL_HOURS", 24, minimum=1)
CIRCUIT_FAILURE_THRESHOLD = env_int("CIRCUIT_FAILURE_THRESHOLD", 5, minimum=1)
CIRCUIT_RESET_SECONDS = env_int("CIRCUIT_RESET_SECONDS", 30, minimum=1)
BATCH_STALE_SECONDS = env_int("BATCH_STALE_SECONDS", 60, minimum=5)
BATCH_MAX_ATTEMPTS = env_int("BATCH_MAX_ATTEMPTS", 3, minimum=1)
IMPORT_MAX_FILE_BYTES = env_int("IMPORT_MAX_FILE_BYTES", 200 * 1024 * 1024, minimum=1024)
IMPORT_MAX_UNPACKED_BYTES = env_int("IMPORT_MAX_UNPACKED_BYTES", 1024 * 1024 * 1024, minimum=1024)
# An XLSX sheet whose XML is larger than this is streamed (bounded memory) instead of read whole
# by calamine, which is faster but holds the whole sheet, briefly twice.
IMPORT_XLSX_STREAM_BYTES = env_int("IMPORT_XLSX_STREAM_BYTES", 64 * 1024 * 1024, minimum=0)
IMPORT_STALE_SECONDS = env_int("IMPORT_STALE_SECONDS", 60, minimum=5)
# An import in create mode reads and validates its next chunk on a thread while the current
# one is written (core.imports.ahead); 0 does both on the worker's one thread, in turn.
IMPORT_READ_AHEAD = env_bool("IMPORT_READ_AHEAD", True)
IMPORT_MAX_ATTEMPTS = env_int("IMPORT_MAX_ATTEMPTS", 5, minimum=1)
# A queued import or async batch whose task has not started after this many seconds is
# handed to the broker again (its task may have died with a worker process).
JOB_REQUEUE_SECONDS = env_int("JOB_REQUEUE_SECONDS", 300, minimum=10)
# ROI metrics (README "ROI metrics"): the hourly rate, in whole ROI_CURRENCY units, of users
# whose profile and department set none; rates with cents go on departments and profiles.
ROI_DEFAULT_HOURLY_RATE = env_int("ROI_DEFAULT_HOURLY_RATE", 50, minimum=0)
ROI_CURRENCY = env_str("ROI_CURRENCY", "EUR").strip().upper()
if len(ROI_CURRENCY) != 3 or not (ROI_CURRENCY.isascii() and ROI_CURRENCY.isalpha()):
    raise ImproperlyConfigured(f"ROI_CURRENCY must be a three-letter currency code, got {ROI_CURRENCY!r}")
BASE_CURRENCY = env_str("BASE_CURRENCY", "EUR").upper()
# Retention (README "Retention"): how many days finished work is kept. The hourly prune (and
# `manage.py prune`) deletes what is older, PRUNE_CHUNK_ROWS rows per statement, each chunk in
# its own short transaction. Idempotency records are kept for IDEMPOTENCY_TTL_HOURS.
RETENTION_EVENTS_DAYS = env_int("RETENTION_EVENTS_DAYS", 90, minimum=1)
RETENTION_DELIVERED_DAYS = env_int("RETENTION_DELIVERED_DAYS", 30, minimum=1)
RETENTION_FAILED_DAYS = env_int("RETENTION_FAILED_DAYS", 90, minimum=1)
RETENTION_BATCH_DAYS = env_int("RETENTION_BATCH_DAYS", 90, minimum=1)
RETENTION_IMPORT_FILES_DAYS = env_int("RETENTION_IMPORT_FILES_DAYS", 30, minimum=1)
RETENTION_IMPORT_ERRORS_DAYS = env_int("RETENTION_IMPORT_ERRORS_DAYS", 90, minimum=1)
RETENTION_TASK_RESULTS_DAYS = env_int("RETENTION_TASK_RESULTS_DAYS", 30, minimum=1)
RETENTION_LOGIN_LOG_DAYS = env_int("RETENTION_LOGIN_LOG_DAYS", 90, minimum=1)
# Audit rows are the system's record and the source of ROI: kept forever unless set (whole days).
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 0, minimum=1) or None
PRUNE_CHUNK_ROWS = env_int("PRUNE_CHUNK_ROWS", 1000, minimum=1)
if PRUNE_CHUNK_ROWS > 10_000:
    raise ImproperlyConfigured(f"PRUNE_CHUNK_ROWS must be at most 10000 (a chunk holds the write lock), "
                               f"got {PRUNE_CHUNK_ROWS}")
# Match committed events to webhook subscriptions on a background thread (never in the
# operation's request); tests switch it off to observe the fan-out right after a commit.
EVENTS_FANOUT_IN_BACKGROUND = env_bool("EVENTS_FANOUT_IN_BACKGROUND", True)
WEBHOOK_ALLOWED_NETWORKS = env_networks("WEBHOOK_ALLOWED_NETWORKS")
# Webhook delivery (see README "Webhooks").
WEBHOOK_CONNECT_TIMEOUT_MS = env_int("WEBHOOK_CONNECT_TIMEOUT_MS", 3000, minimum=100)
WEBHOOK_TIMEOUT_MS = env_int("WEBHOOK_TIMEOUT_MS", 10000, minimum=500)
WEBHOOK_EXPIRY_DAYS = env_int("WEBHOOK_EXPIRY_DAYS", 7, minimum=1)
WEBHOOK_DISPATCH_POLL_MS = env_int("WEBHOOK_DISPATCH_POLL_MS", 20, minimum=5)
WEBHOOK_LOOKAHEAD_MS = env_int("WEBHOOK_LOOKAHEAD_MS", 250, minimum=0)
WEBHOOK_ENQUEUE_LEASE_SECONDS = env_int("WEBHOOK_ENQUEUE_LEASE_SECONDS", 30, minimum=1)
WEBHOOK_TASK_BATCH = env_int("WEBHOOK_TASK_BATCH", 50, minimum=1)
WEBHOOK_SEND_THREADS = env_int("WEBHOOK_SEND_THREADS", 16, minimum=1)
WEBHOOK_SENDER = env_str("WEBHOOK_SENDER", "dispatcher").strip().lower()
if WEBHOOK_SENDER not in ("dispatcher", "worker"):
    raise ImproperlyConfigured(f"WEBHOOK_SENDER must be dispatcher or worker, got {WEBHOOK_SENDER!r}")


def _fernet_keys(name: str) -> list[str]:
    """A comma-separated list of Fernet keys; a bad one is named by position, never printed."""
    keys = env_list(name)
    for position, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: key {position} of {len(keys)} is not a valid Fernet key (32 url-safe base64-encoded "
                "bytes, as Fernet.generate_key() makes)") from None
    return keys


# Fernet keys for webhook signing secrets at rest: the first encrypts, all decrypt; the key
# derived from SECRET_KEY always decrypts last (README "Webhook secret keys").
WEBHOOK_ENCRYPTION_KEYS = _fernet_keys("WEBHOOK_ENCRYPTION_KEYS")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"client_errors_in_one_line": {"()": "core.logfilters.ClientErrorsInOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        # Every record once, through the root's handler: Django's own console handler (with
        # DEBUG) would print each django.* record a second time.
        "django": {"handlers": [], "level": "INFO"},
        # A 403 or 404 is one line, without the traceback of the exception that made it.
        "django.request": {"filters": ["client_errors_in_one_line"]},
        "django.db.backends": {"level": "WARNING"},
        # django-axes logs every log-in at INFO; failures and lockouts (WARNING) are what an operator needs.
        "axes": {"level": "WARNING"},
    },
}
