"""Django settings, all read from the environment (see README "Configuration")."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from clients.flower_env import apply_flower_settings
from config.env import env_bool, env_float, env_int, env_list, env_str

# Flower reads its settings (no telemetry, no update check) when it is imported, and settings
# load before anything imports it: every Django process and its children run with them.
apply_flower_settings()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FEDTRACK_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
# `manage.py demo` writes its own secret here once. Next to the demo (its database: no
# DATABASE_URL) every manage.py command and every demo restart use it, so tokens can be made
# and browser sessions survive a restart; anywhere else the secret must be given.
DEMO_SECRET_KEY_FILE = VAR_DIR / "demo" / "secret_key"
if not SECRET_KEY and "DATABASE_URL" not in os.environ and DEMO_SECRET_KEY_FILE.is_file():
    SECRET_KEY = DEMO_SECRET_KEY_FILE.read_text(encoding="utf-8").strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-dev-key-only-for-debug"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "webapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Only sets a header on the way out: here, it also covers the shortcut below.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A bearer token's unchanged poll: 304 from one query, skipping the rest.
    "webapp.api.freshness.TokenNotModifiedMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "webapp.auth.BearerTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        # Seconds a web worker keeps its connection (config/gunicorn.conf.py sets 60):
        # reconnecting to PostgreSQL per request costs more than the dashboard's query.
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0),
        # One `SELECT 1` per request before reusing a kept connection (DB_CONN_MAX_AGE): a
        # restarted database costs no failed request. DB_HEALTH_CHECKS=0 saves the round trip.
        conn_health_checks=env_bool("DB_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite creates the file but not its folder (var/ is not in a fresh clone).
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The web process and each job's ServerApp write the same file: WAL lets readers go on
    # while one writes, and IMMEDIATE transactions avoid "database is locked" on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "job_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
NODE_MODULES = BASE_DIR / "node_modules"
# Front-end libraries come from npm (package-lock.json) and are served locally: no CDN.
STATICFILES_DIRS = [
    ("vendor/bootstrap", NODE_MODULES / "bootstrap" / "dist"),
    ("vendor/chartjs", NODE_MODULES / "chart.js" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the finders too, so `make demo` needs no collectstatic.
WHITENOISE_USE_FINDERS = True

MODEL_DIR = VAR_DIR / "models"

# Production behind TLS (docs/production.md): HTTPS=1 turns on the redirect, secure cookies
# and HSTS; the web server or proxy in front terminates TLS.
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
# Preloading is hard to undo (browsers ship the list): only on an explicit yes.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    # Only behind a proxy that sets (and strips clients') X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "webapp.api.errors.csrf_failure"  # JSON errors under /api/

# Flower: where the SuperLink's Control API listens, and how to reach it.
FLOWER_SUPERLINK = env_str("FLOWER_SUPERLINK", "127.0.0.1:9093")
FLOWER_INSECURE = env_bool("FLOWER_INSECURE", True)
FLOWER_ROOT_CERTIFICATES = env_str("FLOWER_ROOT_CERTIFICATES", "")
FLOWER_CONTROL_TIMEOUT = env_int("FLOWER_CONTROL_TIMEOUT", 10, minimum=1)
FLOWER_APP_DIR = Path(env_str("FLOWER_APP_DIR", str(BASE_DIR / "flower_app")))

# Tracking (seconds): the tracker writes at most every tenth of the update interval; a client
# silent (no heartbeat, no reply) for the timeout threshold shows `offline`.
CLIENT_TRACKING_UPDATE_INTERVAL = env_int("CLIENT_TRACKING_UPDATE_INTERVAL", 5, minimum=1)
CLIENT_TIMEOUT_THRESHOLD = env_int("CLIENT_TIMEOUT_THRESHOLD", 30, minimum=1)
# Off only to measure what tracking costs a job (`make bench`): the job runs, nothing is recorded.
CLIENT_TRACKING_ENABLED = env_bool("CLIENT_TRACKING_ENABLED", True)
# How long a job's ServerApp waits for its sites' SuperNodes, and for one round's replies.
JOB_NODE_WAIT_TIMEOUT = env_int("JOB_NODE_WAIT_TIMEOUT", 120, minimum=1)
JOB_ROUND_TIMEOUT = env_int("JOB_ROUND_TIMEOUT", 600, minimum=1)
# Timeout of calls from the web app to a site's client API.
SITE_API_TIMEOUT = env_int("SITE_API_TIMEOUT", 5, minimum=1)

# Liveness. A client still training after CLIENT_SLOW_FACTOR x the median reply time of its
# round's other clients is `slow`; so is one training longer than CLIENT_SLOW_AFTER (seconds,
# 0 = off). The ServerApp asks every site's client API for its SuperNode's health every
# few seconds: Flower's own heartbeat comes only every 30 s, too slow to catch a dead site fast.
CLIENT_SLOW_FACTOR = env_float("CLIENT_SLOW_FACTOR", 2.0, minimum=1.0)
CLIENT_SLOW_AFTER = env_float("CLIENT_SLOW_AFTER", 0.0, minimum=0.0)
SITE_HEALTH_PROBES = env_bool("SITE_HEALTH_PROBES", True)
# A running job whose ServerApp has written nothing for this long has lost its ServerApp.
JOB_SERVER_TIMEOUT = env_int("JOB_SERVER_TIMEOUT", 60, minimum=10)
# Called (POST, JSON) when a client goes offline or a job risks falling under min_clients;
# a job's own alert_webhook_url takes precedence.
ALERT_WEBHOOK_URL = env_str("ALERT_WEBHOOK_URL", "")
ALERT_WEBHOOK_TIMEOUT = env_int("ALERT_WEBHOOK_TIMEOUT", 5, minimum=1)

# Every process that loads these settings logs with them, a job's ServerApp included (its
# output is what `flwr log` shows): one line per message, no line per HTTP request that
# Flower's client library (httpx) makes to the SuperLink.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"not_flower": {"()": "config.logfilters.NotFlower"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["not_flower"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
