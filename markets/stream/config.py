"""What one stream runs (``StreamConfig``) and what it knows of each symbol as the frames go (``SymbolState``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ..exchanges.retry import RetryPolicy
from ..intervals import INTERVALS

ONE_MINUTE = INTERVALS["1m"]


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """What one stream process runs: the exchange's symbols, where to reach it, and its timings."""

    exchange: str
    symbols: tuple[str, ...]
    stall_seconds: float = 10.0  # nothing heard (no frame, heartbeat or pong) for this long: the socket is dead
    flush_seconds: float = 0.1  # buffered ticks are written at least this often
    flush_size: int = 2000  # ... or as soon as this many are buffered
    candle_seconds: float = 1.0  # how often the 1m candles that changed are written
    # While the database refuses writes the received trades stay buffered, up to this many (STREAM_BUFFER_MAX_TICKS;
    # about 0.6 KB each); past it the stream stops taking trades until half of them are written, and the hole is
    # recovered by id afterwards like any gap.
    buffer_max_ticks: int = 300_000
    catch_up_batch: int = 20_000  # the most trades one write takes (a backlog is written in parts of this size)
    stop_flush_seconds: float = 30.0  # at shutdown, how long writing what is buffered is tried before giving up
    max_age_seconds: float = 23.5 * 3600  # renew the socket before Binance's 24-hour limit
    streams_per_socket: int | None = None  # symbols a socket carries at most; None: the venue's limit (registry)
    follow_seconds: float = 2.0  # how often a stream given a source of symbols asks it
    reconnect: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(attempts=1_000_000, base_delay=0.25, max_delay=5.0)
    )


@dataclass(slots=True)
class SymbolState:
    """The stream's view of one symbol: the last trade seen, and how many were taken since the metrics were told."""

    last_id: int | None = None  # the highest trade id seen (or stored, at start)
    first_id: int | None = None  # the first id taken of a symbol with nothing stored: its seam with a previous holder
    last_ts: datetime | None = None
    last_price: Decimal | None = None
    received: int = 0  # trades taken since the metrics were last told (a plain int: no lock per trade)
