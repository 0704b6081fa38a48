"""The Prometheus metrics of market data, one set per process (no Django here).

Each process keeps its own counts in prometheus-client's default registry and serves them itself: the web at
``/metrics`` (Daphne), the stream on ``STREAM_METRICS_PORT`` and the Celery worker on ``WORKER_METRICS_PORT``
(:func:`serve`). Counters count a batch's worth at a time, never one ``inc()`` per trade: the stream takes
10,000+ trades/s, and each ``inc()`` takes a lock.

Labels are few and bounded: the exchange, the symbol (the configured instruments), the feed state, a tick's
source (``ws``, ``rest``, ``import``) and, for write failures, the stage that failed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from prometheus_client import Counter, Enum, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)
PREFIX = "tradingsite"
FEED_STATES = ("connected", "reconnecting", "paused", "down")  # markets.models.Feed.State

trades_received = Counter(
    f"{PREFIX}_trades_received", "Trades the live stream took from the socket", ["exchange", "symbol"]
)
trades_stored = Counter(
    f"{PREFIX}_trades_stored",
    "Trades newly written to MongoDB (duplicates not counted), by where they came from",
    ["exchange", "symbol", "source"],
)
feed_state = Enum(
    f"{PREFIX}_feed_state", "The live feed's state (1 for the current one)", ["exchange", "symbol"], states=FEED_STATES
)
feed_lag = Gauge(
    f"{PREFIX}_feed_lag_seconds", "Our time minus the exchange time of the feed's last trade", ["exchange", "symbol"]
)
feed_last_trade = Gauge(
    f"{PREFIX}_feed_last_trade_timestamp_seconds",
    "Exchange time of the feed's last trade (Unix seconds): alert on time() minus this",
    ["exchange", "symbol"],
)
reconnects = Counter(f"{PREFIX}_stream_reconnects", "Times the stream's socket went down", ["exchange"])
gaps_opened = Counter(f"{PREFIX}_gaps_opened", "Holes in the trade ids recorded", ["exchange", "symbol"])
gaps_filled = Counter(f"{PREFIX}_gaps_filled", "Holes in the trade ids filled completely", ["exchange", "symbol"])
gaps_unrecoverable = Counter(
    f"{PREFIX}_gaps_unrecoverable", "Holes the exchange could not fill", ["exchange", "symbol"]
)
gap_fill_seconds = Histogram(
    f"{PREFIX}_gap_fill_seconds",
    "Time to fill a hole in the trade ids (the stream's: from its detection; the worker's: the task's)",
    ["exchange"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
)
rest_requests = Counter(f"{PREFIX}_rest_requests", "HTTP requests sent to an exchange's REST API", ["exchange"])
rest_rate_limited = Counter(
    f"{PREFIX}_rest_rate_limited", "REST answers 429 (rate limited) or 418 (banned)", ["exchange", "status"]
)
rest_used_weight = Gauge(
    f"{PREFIX}_rest_used_weight",
    "The request weight the exchange last reported used this minute (Binance: X-MBX-USED-WEIGHT-1M)",
    ["exchange"],
)
flush_seconds = Histogram(
    f"{PREFIX}_stream_flush_seconds",
    "Time to write one flush of live trades (and count its candles)",
    ["exchange"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
store_failures = Counter(
    f"{PREFIX}_stream_store_failures",
    "Flushes the database refused (kept and retried): stage 'ticks' or 'candles'",
    ["exchange", "stage"],
)
database_up = Gauge(
    f"{PREFIX}_stream_database_up",
    "1 while the stream's database takes its writes, 0 from a failed write until one goes through again",
    ["exchange"],
)
buffered_ticks = Gauge(
    f"{PREFIX}_stream_buffered_ticks",
    "Trades received and not yet written (they pile up while the database is down, up to STREAM_BUFFER_MAX_TICKS)",
    ["exchange"],
)
shed_frames = Counter(
    f"{PREFIX}_stream_shed_frames",
    "Frames not taken because the outage buffer was full (their trades are recovered by id afterwards)",
    ["exchange"],
)
publish_failures = Counter(
    f"{PREFIX}_channel_publish_failures", "Live events the channel layer (Redis) did not take", ["exchange"]
)
listener_failures = Counter(
    f"{PREFIX}_stream_listener_failures",
    "Stream events a listener (signals, the trader) raised on; logged, and the record goes on",
    ["exchange", "listener", "event"],
)


def count_stored(counts: Mapping[tuple[str, str, object], int]) -> None:
    """Count newly stored trades by (exchange, symbol, source); the source is a ``Source`` or its text."""
    for (exchange, symbol, source), n in counts.items():
        if n:
            trades_stored.labels(exchange, symbol, str(source)).inc(n)


def serve(port: int, addr: str, what: str) -> bool:
    """Serve this process's metrics over HTTP on ``addr:port`` from a daemon thread (0: do not). A port that
    is taken is logged, not raised: the process's work matters more than its metrics. True when serving."""
    if port == 0:
        return False
    try:
        start_http_server(port, addr=addr)
    except OSError as exc:
        log.warning("%s metrics not served on %s:%d (%s); set another port or 0", what, addr, port, exc)
        return False
    log.info("%s metrics at http://%s:%d/metrics", what, addr, port)
    return True


# The exchange's word on waiting (markets/exchanges/limiter.py): a 429/418 Retry-After or a ban holds every requester.
exchange_blocked_until = Gauge(
    f"{PREFIX}_exchange_blocked_until_seconds",
    "Unix time before which no request goes to the exchange (a 429/418 Retry-After or a ban, told to this process "
    "or another of the host); blocked while above time()",
    ["exchange"],
)
exchange_requests_held = Counter(
    f"{PREFIX}_exchange_requests_held",
    "Requests held back by an exchange's Retry-After: 'waited' it out, or 'refused' (longer than the requester waits)",
    ["exchange", "outcome"],
)
