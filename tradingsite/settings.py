"""Django settings. The environment is read here and nowhere else (see README, "Environment").

Secrets come only from the environment; DEBUG is off unless DJANGO_DEBUG says otherwise.
"""

from __future__ import annotations

import os
import secrets
import sys
from decimal import Decimal
from pathlib import Path

from tradingsite.env import ConfigError, Env, load_env_file, mongodb_database, redis_database

BASE_DIR = Path(__file__).resolve().parent.parent
EXCHANGES = ("binance", "coinbase", "kraken")  # the venues the project has adapters for

try:
    load_env_file(BASE_DIR / ".env")  # optional; what the environment already says wins
except ConfigError as exc:
    sys.exit(f"tradingsite: {exc}")
_env = Env(os.environ)

DEBUG = _env.flag("DJANGO_DEBUG")
# Without DJANGO_SECRET_KEY a random key is made per process: fine for development, and never a
# key that was committed anywhere. Sessions do not survive a restart then.
SECRET_KEY = _env.text("DJANGO_SECRET_KEY", secret=True) or secrets.token_urlsafe(50)
ALLOWED_HOSTS = list(_env.items("DJANGO_ALLOWED_HOSTS", ("127.0.0.1", "localhost")))
LOG_LEVEL = _env.text("LOG_LEVEL", "INFO", choices=("debug", "info", "warning", "error", "critical")).upper()

# Services. manage.py starts the local dev stack (tradingsite.devstack) when these are unset.
MONGODB_URI = _env.url("MONGODB_URI", "", schemes=("mongodb", "mongodb+srv"))
# The database: MONGODB_DB, else the one MONGODB_URI names (mongodb://host/mydb), else "tradingsite".
MONGODB_DB = _env.text("MONGODB_DB") or mongodb_database(MONGODB_URI) or "tradingsite"
REDIS_URL = _env.url("REDIS_URL", "", schemes=("redis", "rediss", "unix"))
_REDIS = REDIS_URL or "redis://127.0.0.1:6379/0"  # what the channel layer, Celery and the cache use

# Exchanges (the adapters read these through settings only).
_http, _ws = ("http", "https"), ("ws", "wss")
BINANCE_REST_URL = _env.url("BINANCE_REST_URL", "https://api.binance.com", schemes=_http)
BINANCE_WS_URL = _env.url("BINANCE_WS_URL", "wss://stream.binance.com:9443", schemes=_ws)
BINANCE_API_KEY = _env.text("BINANCE_API_KEY", secret=True)
BINANCE_API_SECRET = _env.text("BINANCE_API_SECRET", secret=True)
COINBASE_REST_URL = _env.url("COINBASE_REST_URL", "https://api.exchange.coinbase.com", schemes=_http)
COINBASE_WS_URL = _env.url("COINBASE_WS_URL", "wss://ws-feed.exchange.coinbase.com", schemes=_ws)
KRAKEN_REST_URL = _env.url("KRAKEN_REST_URL", "https://api.kraken.com", schemes=_http)
KRAKEN_WS_URL = _env.url("KRAKEN_WS_URL", "wss://ws.kraken.com/v2", schemes=_ws)
FEED_STALL_SECONDS = _env.number("FEED_STALL_SECONDS", 10.0, lo=0.5, unit="seconds")  # the live feed's watchdog
# Set by `make run`/`make demo` when the exchange URLs point at the local simulator: the page says so.
MARKET_SIMULATED = _env.flag("MARKET_SIMULATED")
# The consolidated price (/api/v1/consolidated): a venue whose last trade is older than this many seconds is stale,
# and one further than this many basis points from the fresh venues' median is an outlier; neither counts.
CONSOLIDATED_STALE_SECONDS = _env.number("CONSOLIDATED_STALE_SECONDS", 60.0, lo=1, unit="seconds")
CONSOLIDATED_OUTLIER_BPS = Decimal(_env.decimal("CONSOLIDATED_OUTLIER_BPS", "50", lo="0"))
# The signal strategy (signals/rules.py, "ta-vote" v1): rule weights, RSI levels, the net vote that acts, and the
# candles of cooldown between two signals of one direction. Read by the stream, evaluate_stored and backtest.
SIGNAL_PARAMS = {
    "ma_cross_weight": "0.30",
    "macd_cross_weight": "0.25",
    "rsi_weight": "0.20",
    "bollinger_weight": "0.20",
    "rsi_oversold": 30,
    "rsi_overbought": 70,
    "threshold": _env.decimal("SIGNAL_THRESHOLD", "0.30", lo="0"),
    "cooldown": str(_env.integer("SIGNAL_COOLDOWN", 15, lo=0)),
}
# Trading (orders/): signals of these exchanges go through the risk check to an executor. Paper without API keys;
# with BINANCE_API_KEY and BINANCE_API_SECRET, Binance at BINANCE_REST_URL: TRADING_MODE "testnet" (the default)
# or "live" (only when asked). TRADING_ENABLED=0 records signals without acting on them.
TRADING_ENABLED = _env.flag("TRADING_ENABLED", True)
# Orders, positions and PnL are for staff sessions only (the API, the live page's panels and its socket);
# TRADING_DATA_PUBLIC=1 shows them to anyone, on purpose.
TRADING_DATA_PUBLIC = _env.flag("TRADING_DATA_PUBLIC")
TRADING_EXCHANGES = _env.items("TRADING_EXCHANGES", ("binance",), choices=EXCHANGES)
TRADING_MODE = _env.text("TRADING_MODE", "testnet", choices=("testnet", "live"))
BINANCE_TIMEOUT_SECONDS = _env.number("BINANCE_TIMEOUT_SECONDS", 5.0, lo=0.1, unit="seconds")
PAPER_CASH = Decimal(_env.decimal("PAPER_CASH", "10000", lo="0"))  # the paper account's starting quote balance
PAPER_FEE = Decimal(_env.decimal("PAPER_FEE", "0.001", lo="0", hi="1"))  # of each fill's notional (Binance's taker fee)
PAPER_SLIPPAGE = Decimal(_env.decimal("PAPER_SLIPPAGE", "0.0005", lo="0", hi="1"))  # against us on every paper fill
# The risk check (orders/risk.py RiskParams): fractions (0.02 is 2 %); empty means the rule is off.
RISK_PARAMS = {
    "risk_per_trade": _env.decimal("RISK_PER_TRADE", "0.02", lo="0", hi="1"),
    "max_symbol_fraction": _env.decimal("RISK_MAX_SYMBOL_FRACTION", "0.10", lo="0", hi="1"),
    "max_open_positions": str(_env.integer("RISK_MAX_OPEN_POSITIONS", 3, lo=0)),
    "stop_loss_pct": _env.decimal("RISK_STOP_LOSS", "0.03", lo="0", hi="1"),
    "stop_atr_multiple": _env.decimal("RISK_STOP_ATR_MULTIPLE", "", lo="0"),
    "take_profit_pct": _env.decimal("RISK_TAKE_PROFIT", "0.06", lo="0"),
    "reward_risk": _env.decimal("RISK_REWARD_RISK", "", lo="0"),
    "daily_drawdown_halt": _env.decimal("RISK_DAILY_DRAWDOWN_HALT", "0.05", lo="0", hi="1"),
}

INSTALLED_APPS = [
    "daphne",  # first, so `runserver` serves ASGI (HTTP and WebSocket) too
    "tradingsite.apps.MongoAdminConfig",
    "tradingsite.apps.MongoAuthConfig",
    "tradingsite.apps.MongoContentTypesConfig",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "markets",
    "signals",
    "orders",
    "live",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",  # static files from the app server itself (Daphne)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tradingsite.urls"
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
            ]
        },
    }
]
ASGI_APPLICATION = "tradingsite.asgi.application"

# MongoDB through the official backend: ObjectId primary keys everywhere, contrib apps included
# (their migrations live in mongo_migrations/, made with ObjectIdAutoField).
DATABASES = {"default": {"ENGINE": "django_mongodb_backend", "HOST": MONGODB_URI, "NAME": MONGODB_DB}}
DEFAULT_AUTO_FIELD = "django_mongodb_backend.fields.ObjectIdAutoField"
MIGRATION_MODULES = {
    "admin": "mongo_migrations.admin",
    "auth": "mongo_migrations.auth",
    "contenttypes": "mongo_migrations.contenttypes",
}

# The channel layer joins the stream process, Daphne and the admin; always Redis (the dev stack
# starts one when REDIS_URL is unset).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                # redis-py 8's default socket timeout (5 s) equals channels-redis's blocking pop (5 s): every idle
                # receive would end in a TimeoutError, and a message popped at that moment would be lost.
                {"address": _REDIS, "socket_timeout": 30},
            ]
        },
    }
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "EXCEPTION_HANDLER": "markets.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tradingsite market data and trading API",
    "DESCRIPTION": "Instruments, candles (MongoDB first, missing ranges fetched from the exchange), ticks, gaps, "
    "feeds, the consolidated price, signals, and the trading records (orders, positions; read-only).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".data" / "static"
# ServeStatic (whitenoise's async fork) serves them from Daphne itself. The image runs `collectstatic` with
# DJANGO_STATIC_MANIFEST=1: compressed copies with content hashes in their names, cached for a year. Without it
# (`make run`, the tests) the files are found in the apps and node_modules and nothing needs collecting.
STATIC_MANIFEST = _env.flag("DJANGO_STATIC_MANIFEST")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "tradingsite.static_storage.ModuleManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
SERVESTATIC_USE_FINDERS = not STATIC_MANIFEST
# Front-end packages come from npm (package.json; `make` runs `npm ci`), never a vendored copy.
STATICFILES_DIRS = [("vendor/lightweight-charts", BASE_DIR / "node_modules" / "lightweight-charts" / "dist")]
SILENCED_SYSTEM_CHECKS = ["staticfiles.W004"]  # before `npm ci` has run, the directory is missing

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

# Celery (tradingsite/celery.py): Redis broker, no result backend. Beat sends scan_gaps every SCAN_GAPS_SECONDS:
# it looks over the last SCAN_GAPS_LOOKBACK_HOURS of stored ticks for holes in the trade ids and missing 1m
# candles, and queues their fills (markets/tasks.py). Each scan covers everything, so one that waited longer
# than an interval for a worker expires instead of piling up.
CELERY_BROKER_URL = _REDIS
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # backfills are long and acknowledged late: take one at a time
CELERY_TIMEZONE = TIME_ZONE
SCAN_GAPS_SECONDS = _env.number("SCAN_GAPS_SECONDS", 60.0, lo=1, unit="seconds")
SCAN_GAPS_LOOKBACK_HOURS = _env.number("SCAN_GAPS_LOOKBACK_HOURS", 24.0, lo=0.01, unit="hours")
CELERY_BEAT_SCHEDULE = {
    "scan-gaps": {
        "task": "markets.tasks.scan_gaps",
        "schedule": SCAN_GAPS_SECONDS,
        "options": {"expires": SCAN_GAPS_SECONDS},
    },
}
# Beat's own state (last run times) lives with the other local data, not in the repository's root.
CELERY_BEAT_SCHEDULE_FILENAME = _env.text(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(BASE_DIR / ".data" / "celerybeat-schedule")
)

# Django's cache (DRF throttle counters, the history backfill's dedup keys): Redis, database 1 of REDIS_URL's server
# unless CACHE_REDIS_URL names another.
CACHE_REDIS_URL = _env.url("CACHE_REDIS_URL", "", schemes=("redis", "rediss", "unix")) or redis_database(_REDIS, 1)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_REDIS_URL,
        "KEY_PREFIX": "tradingsite",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},  # a dead Redis must not hang a request
    }
}
# API requests per client (markets/api/throttles.py), counted in the cache: anonymous clients by address, signed-in
# users and staff by account; "<n>/<s|min|hour|day>", empty for no limit. Over the limit: 429 with Retry-After.
_RATE = r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)"
_RATE_EXPECTED = "requests per period such as 120/min (s, min, hour, day), or none"
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["markets.api.throttles.ClientRateThrottle"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    kind: None if value == "none" else value
    for kind, value in (
        ("anon", _env.matching("API_THROTTLE_ANON", "120/min", _RATE + "|none", _RATE_EXPECTED)),  # per address
        ("user", _env.matching("API_THROTTLE_USER", "600/min", _RATE + "|none", _RATE_EXPECTED)),  # per account
        ("staff", _env.matching("API_THROTTLE_STAFF", "3000/min", _RATE + "|none", _RATE_EXPECTED)),  # per staff
    )
}
# Proxies in front of the web process that append to X-Forwarded-For (0: the client is REMOTE_ADDR; a client's own
# X-Forwarded-For is never trusted beyond this many hops).
REST_FRAMEWORK["NUM_PROXIES"] = _env.integer("API_NUM_PROXIES", 0, lo=0)
# An anonymous /api/v1/candles answers from MongoDB only: each UTC day of its missing range is queued once as a
# backfill task (markets.tasks.backfill_candles) and not queued again for this many seconds.
HISTORY_BACKFILL_DEDUP_SECONDS = _env.number("HISTORY_BACKFILL_DEDUP_SECONDS", 900.0, lo=1, unit="seconds")
# Filling candles from another venue (minutes their own exchange no longer serves) sends at most this many REST
# requests and spends at most this many seconds per history call or backfill task; the rest stays missing.
CROSS_VENUE_MAX_REQUESTS = _env.integer("CROSS_VENUE_MAX_REQUESTS", 10, lo=0)
CROSS_VENUE_MAX_SECONDS = _env.number("CROSS_VENUE_MAX_SECONDS", 5.0, lo=0, unit="seconds")

# Prometheus metrics (markets/metrics.py): the web serves its own at /metrics; the stream and the Celery worker
# serve theirs over HTTP on these ports (0: not served), listening on METRICS_ADDR (0.0.0.0 for a scraper elsewhere).
STREAM_METRICS_PORT = _env.integer("STREAM_METRICS_PORT", 9101, lo=0, hi=65535)
WORKER_METRICS_PORT = _env.integer("WORKER_METRICS_PORT", 9102, lo=0, hi=65535)
METRICS_ADDR = _env.text("METRICS_ADDR", "127.0.0.1")
# /healthz, /readyz and /metrics are answered first: no HTTPS redirect, host check or session can turn a probe away.
MIDDLEWARE = ["tradingsite.probes.probe_middleware", *MIDDLEWARE]

# Production (behind a TLS proxy): the README shows a .env with which `manage.py check --deploy` is clean.
# Origins allowed to POST with a CSRF token (the staff actions, the admin), e.g. https://trading.example.com.
CSRF_TRUSTED_ORIGINS = list(_env.items("DJANGO_CSRF_TRUSTED_ORIGINS"))
for _origin in CSRF_TRUSTED_ORIGINS:
    if "://" not in _origin:
        _env.errors.append(f"DJANGO_CSRF_TRUSTED_ORIGINS: {_origin!r} needs its scheme (https://{_origin})")
# The proxy in front says a request came over https with X-Forwarded-Proto: https; trust it only behind one.
if _env.flag("DJANGO_BEHIND_TLS_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = _env.flag("DJANGO_SECURE_SSL_REDIRECT")
# Probes and scrapers talk plain http inside the deployment's network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = _env.flag("DJANGO_SECURE_COOKIES")
SECURE_HSTS_SECONDS = _env.integer("DJANGO_HSTS_SECONDS", 0, lo=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env.flag("DJANGO_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = _env.flag("DJANGO_HSTS_PRELOAD")

# The live stream's resilience (README "Reliability").
# While MongoDB is down the stream keeps the trades it receives in memory, at most this many (about 0.6 KB each:
# the default holds ~175 MB); past it it takes no more until half are written, and recovers the hole by id.
STREAM_BUFFER_MAX_TICKS = _env.integer("STREAM_BUFFER_MAX_TICKS", 300_000, lo=1_000)
# A drop request (manage.py feed drop, the live page's button) waits this long for the stream to acknowledge it.
FEED_CONTROL_ACK_SECONDS = _env.number("FEED_CONTROL_ACK_SECONDS", 2.0, lo=0.1, unit="seconds")
# The stream renews its membership of its control group this often (at most half channels-redis's group_expiry),
# and at once after any channel-layer error: a Redis restart forgets the group.
FEED_CONTROL_REJOIN_SECONDS = _env.number("FEED_CONTROL_REJOIN_SECONDS", 60.0, lo=0.1, unit="seconds")

# --- issue 16: leases ---
# Stream workers share an exchange's instruments through leases in MongoDB (markets/leases): a lease lasts
# STREAM_LEASE_SECONDS by the database's clock and is renewed every STREAM_LEASE_RENEW_SECONDS; a worker that dies
# loses its instruments that long after its last renewal, and the others take them over at their next round.
STREAM_LEASE_SECONDS = _env.number("STREAM_LEASE_SECONDS", 15.0, lo=1.0, unit="seconds")
STREAM_LEASE_RENEW_SECONDS = _env.number("STREAM_LEASE_RENEW_SECONDS", 3.0, lo=0.1, unit="seconds")
if STREAM_LEASE_RENEW_SECONDS * 2 > STREAM_LEASE_SECONDS:
    _env.errors.append(
        f"STREAM_LEASE_RENEW_SECONDS={STREAM_LEASE_RENEW_SECONDS:g}: expected at most half of STREAM_LEASE_SECONDS "
        f"({STREAM_LEASE_SECONDS:g}), so that a lease is renewed at least twice before it runs out"
    )

# --- issue 16: sockets ---
# `manage.py stream` without --symbols reads the stored instruments this often: one added (or set streamed again) is
# streamed within about this long plus a second of subscribing; one removed stops as soon.
STREAM_INSTRUMENTS_POLL_SECONDS = _env.number("STREAM_INSTRUMENTS_POLL_SECONDS", 2.0, lo=0.1, unit="seconds")

# --- issue 16: workers ---
# The symbols the trader trades on each exchange of TRADING_EXCHANGES (comma-separated, as the exchange writes
# them); empty: every streamed instrument. With stream workers sharing the instruments, the worker holding the
# trading lease streams these itself (its strategy decides on their candles) and shares the others.
TRADING_SYMBOLS = frozenset(s.upper() for s in _env.items("TRADING_SYMBOLS"))

# --- issue 17: vision ---
# Binance's public bulk files (data.binance.vision: daily and monthly aggTrades and klines zips, each with a
# .CHECKSUM), at the same paths under this base URL; the exchange simulator serves its history there too.
BINANCE_DATA_URL = _env.url("BINANCE_DATA_URL", "https://data.binance.vision", schemes=_http)

# Every variable is read above; one bad value stops the process here, each named with its value.
try:
    _env.check()
except ConfigError as exc:
    sys.exit(f"tradingsite: {exc}")
