"""Django settings. The environment is read here and nowhere else (see README, "Environment").

Secrets come only from the environment; DEBUG is off unless DJANGO_DEBUG says otherwise.
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


DEBUG = _flag("DJANGO_DEBUG")
# Without DJANGO_SECRET_KEY a random key is made per process: fine for development, and never a
# key that was committed anywhere. Sessions do not survive a restart then.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]

# Services. manage.py starts the local dev stack (tradingsite.devstack) when these are unset.
MONGODB_URI = os.environ.get("MONGODB_URI", "")
MONGODB_DB = os.environ.get("MONGODB_DB", "tradingsite")
REDIS_URL = os.environ.get("REDIS_URL", "")

# Exchanges (the adapters read these through settings only).
BINANCE_REST_URL = os.environ.get("BINANCE_REST_URL", "https://api.binance.com")
BINANCE_WS_URL = os.environ.get("BINANCE_WS_URL", "wss://stream.binance.com:9443")
BINANCE_API_KEY = os.environ.get("BINANCE_API_KEY", "")
BINANCE_API_SECRET = os.environ.get("BINANCE_API_SECRET", "")
COINBASE_REST_URL = os.environ.get("COINBASE_REST_URL", "https://api.exchange.coinbase.com")
COINBASE_WS_URL = os.environ.get("COINBASE_WS_URL", "wss://ws-feed.exchange.coinbase.com")
KRAKEN_REST_URL = os.environ.get("KRAKEN_REST_URL", "https://api.kraken.com")
KRAKEN_WS_URL = os.environ.get("KRAKEN_WS_URL", "wss://ws.kraken.com/v2")
FEED_STALL_SECONDS = float(os.environ.get("FEED_STALL_SECONDS", "10"))  # the live feed's watchdog
# Set by `make run`/`make demo` when the exchange URLs point at the local simulator: the page says so.
MARKET_SIMULATED = _flag("MARKET_SIMULATED")
# The consolidated price (/api/v1/consolidated): a venue whose last trade is older than this many seconds is stale,
# and one further than this many basis points from the fresh venues' median is an outlier; neither counts.
CONSOLIDATED_STALE_SECONDS = float(os.environ.get("CONSOLIDATED_STALE_SECONDS", "60"))
CONSOLIDATED_OUTLIER_BPS = Decimal(os.environ.get("CONSOLIDATED_OUTLIER_BPS", "50"))
# The signal strategy (signals/rules.py, "ta-vote" v1): rule weights, RSI levels, the net vote that acts, and the
# candles of cooldown between two signals of one direction. Read by the stream, evaluate_stored and backtest.
SIGNAL_PARAMS = {
    "ma_cross_weight": "0.30",
    "macd_cross_weight": "0.25",
    "rsi_weight": "0.20",
    "bollinger_weight": "0.20",
    "rsi_oversold": 30,
    "rsi_overbought": 70,
    "threshold": os.environ.get("SIGNAL_THRESHOLD", "0.30"),
    "cooldown": os.environ.get("SIGNAL_COOLDOWN", "15"),
}
# Trading (orders/): signals of these exchanges go through the risk check to an executor. Paper without API keys;
# with BINANCE_API_KEY and BINANCE_API_SECRET, Binance at BINANCE_REST_URL: TRADING_MODE "testnet" (the default)
# or "live" (only when asked). TRADING_ENABLED=0 records signals without acting on them.
TRADING_ENABLED = _flag("TRADING_ENABLED", True)
TRADING_EXCHANGES = tuple(e.strip() for e in os.environ.get("TRADING_EXCHANGES", "binance").split(",") if e.strip())
TRADING_MODE = os.environ.get("TRADING_MODE", "testnet").strip().lower()
BINANCE_TIMEOUT_SECONDS = float(os.environ.get("BINANCE_TIMEOUT_SECONDS", "5"))
PAPER_CASH = Decimal(os.environ.get("PAPER_CASH", "10000"))  # the paper account's starting quote balance
PAPER_FEE = Decimal(os.environ.get("PAPER_FEE", "0.001"))  # of each fill's notional (Binance's base taker fee)
PAPER_SLIPPAGE = Decimal(os.environ.get("PAPER_SLIPPAGE", "0.0005"))  # against us on every paper fill (5 bps)
# The risk check (orders/risk.py RiskParams): fractions (0.02 is 2 %); empty means the rule is off.
RISK_PARAMS = {
    "risk_per_trade": os.environ.get("RISK_PER_TRADE", "0.02"),
    "max_symbol_fraction": os.environ.get("RISK_MAX_SYMBOL_FRACTION", "0.10"),
    "max_open_positions": os.environ.get("RISK_MAX_OPEN_POSITIONS", "3"),
    "stop_loss_pct": os.environ.get("RISK_STOP_LOSS", "0.03"),
    "stop_atr_multiple": os.environ.get("RISK_STOP_ATR_MULTIPLE", ""),
    "take_profit_pct": os.environ.get("RISK_TAKE_PROFIT", "0.06"),
    "reward_risk": os.environ.get("RISK_REWARD_RISK", ""),
    "daily_drawdown_halt": os.environ.get("RISK_DAILY_DRAWDOWN_HALT", "0.05"),
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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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
                {"address": REDIS_URL or "redis://127.0.0.1:6379/0", "socket_timeout": 30},
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
# Front-end packages come from npm (package.json; `make` runs `npm ci`), never a vendored copy.
STATICFILES_DIRS = [("vendor/lightweight-charts", BASE_DIR / "node_modules" / "lightweight-charts" / "dist")]
SILENCED_SYSTEM_CHECKS = ["staticfiles.W004"]  # before `npm ci` has run, the directory is missing

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Celery (tradingsite/celery.py): Redis broker, no result backend. Beat sends scan_gaps every SCAN_GAPS_SECONDS:
# it looks over the last SCAN_GAPS_LOOKBACK_HOURS of stored ticks for holes in the trade ids and missing 1m
# candles, and queues their fills (markets/tasks.py). Each scan covers everything, so one that waited longer
# than an interval for a worker expires instead of piling up.
CELERY_BROKER_URL = REDIS_URL or "redis://127.0.0.1:6379/0"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # backfills are long and acknowledged late: take one at a time
CELERY_TIMEZONE = TIME_ZONE
SCAN_GAPS_SECONDS = float(os.environ.get("SCAN_GAPS_SECONDS", "60"))
SCAN_GAPS_LOOKBACK_HOURS = float(os.environ.get("SCAN_GAPS_LOOKBACK_HOURS", "24"))
CELERY_BEAT_SCHEDULE = {
    "scan-gaps": {
        "task": "markets.tasks.scan_gaps",
        "schedule": SCAN_GAPS_SECONDS,
        "options": {"expires": SCAN_GAPS_SECONDS},
    },
}
# Beat's own state (last run times) lives with the other local data, not in the repository's root.
CELERY_BEAT_SCHEDULE_FILENAME = os.environ.get(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(BASE_DIR / ".data" / "celerybeat-schedule")
)

# --- ops ---
# Prometheus metrics (markets/metrics.py): the web serves its own at /metrics; the stream and the Celery worker
# serve theirs over HTTP on these ports (0: not served), listening on METRICS_ADDR (0.0.0.0 for a scraper elsewhere).
STREAM_METRICS_PORT = int(os.environ.get("STREAM_METRICS_PORT", "9101"))
WORKER_METRICS_PORT = int(os.environ.get("WORKER_METRICS_PORT", "9102"))
METRICS_ADDR = os.environ.get("METRICS_ADDR", "127.0.0.1")
# /healthz, /readyz and /metrics are answered first: no HTTPS redirect, host check or session can turn a probe away.
MIDDLEWARE = ["tradingsite.probes.probe_middleware", *MIDDLEWARE]
