"""What every exchange adapter is and produces. No Django here.

Adapters (one package per exchange) turn raw payloads into the frozen records of :mod:`markets.types`
(:class:`TradeTick`, :class:`CandleBar`, :class:`InstrumentInfo`, :class:`Source`, re-exported here) at the
boundary (Decimal prices, UTC times); nothing downstream reads raw payloads. Every exchange's REST adapter
implements :class:`RestAdapter`:

- ``name`` and ``capabilities`` (differences between exchanges declared as data);
- ``instruments(symbols)`` → :class:`InstrumentInfo` with the exchange's filters;
- ``trading_instruments()`` → every instrument the exchange lists as trading now (its own status word);
- ``klines(symbol, interval, start, end, limit)`` → :class:`CandleBar` whose open time is in [start, end);
- ``trades_from_id(symbol, from_id, limit, since=)`` → :class:`TradeTick` with ids from ``from_id`` up
  (``since``: the time of the trade before ``from_id``, which exchanges that page only by time need);
- ``trades_by_time(symbol, start, end, limit)`` → ticks with exchange time in [start, end);
- ``latest_trades(symbol, limit)`` → the most recent ticks;
- ``requests`` (HTTP requests made) and ``used_weight`` (the exchange's last reported weight);
- ``close()`` releases its connections.

Every exchange's live feed implements :class:`StreamAdapter`: the socket URL, the messages that subscribe
once it is open, ``parse`` of one frame into a tick, a :class:`StreamEvent` or nothing, and ``liveness``
(:class:`Liveness`: how its socket shows it is alive while nothing trades); ``for_symbols`` gives the same feed for
one socket's share of the symbols, and ``subscribe_to``/``unsubscribe_from`` the messages that change an open
socket's symbols.

Exchanges are found by name in :mod:`markets.exchanges.registry` (adapters, URL settings, defaults,
capabilities, symbol rules). Errors are :mod:`markets.exchanges.errors`; retries and back-off are
:mod:`markets.exchanges.retry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

# The records live in markets.types; re-exported here so that adapters and callers import one module.
from ..types import CandleBar, InstrumentInfo, Source, TradeTick

__all__ = [
    "CandleBar",
    "Capabilities",
    "InstrumentInfo",
    "Liveness",
    "RestAdapter",
    "Source",
    "StreamAdapter",
    "StreamEvent",
    "TradeTick",
]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an exchange's REST API does, declared as data rather than branches in callers."""

    ids_contiguous: bool  # trade ids have no holes, so an id gap is missed data
    max_klines: int  # candles one request returns at most
    max_trades: int  # trades one request returns at most
    klines_omit_quiet: bool  # a minute without trades has no candle
    trades_time_window: timedelta | None = None  # the widest start..end a trades-by-time request accepts
    intervals: tuple[str, ...] = field(default=("1m", "5m", "15m", "1h", "4h", "1d"))


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """What one stream frame says when it is not exactly one trade: any number of ``ticks``, the ids of the
    latest trades a heartbeat vouches for (``last_ids``: (symbol, id); an id past the last one seen means
    trades were missed), and a ``reply`` to send back (an application-level pong)."""

    ticks: tuple[TradeTick, ...] = ()
    last_ids: tuple[tuple[str, int], ...] = ()
    reply: str | None = None


@dataclass(frozen=True, slots=True)
class Liveness:
    """How an exchange's live socket shows it is alive when nothing trades, so that a quiet market is not taken for a
    dead socket. ``answers_pings``: it answers a WebSocket ping with a pong (RFC 6455), so the stream may ask a
    silent socket whether it is there. ``heartbeat_seconds``: it sends some frame at least this often on a
    subscribed socket even when nothing trades (None: a quiet market is silent)."""

    answers_pings: bool = True
    heartbeat_seconds: float | None = None


class StreamAdapter(Protocol):
    """One exchange's live trade stream for a set of symbols (pure: the stream owns the socket)."""

    name: str
    liveness: Liveness
    symbols: tuple[str, ...]

    def url(self) -> str: ...

    def subscribe(self) -> list[str]: ...

    def for_symbols(self, symbols: tuple[str, ...]) -> StreamAdapter: ...

    def subscribe_to(self, symbols: Sequence[str]) -> list[str]: ...

    def unsubscribe_from(self, symbols: Sequence[str]) -> list[str]: ...

    def parse(self, message: str | bytes, received_at: datetime) -> TradeTick | StreamEvent | None: ...


class RestAdapter(Protocol):
    """One exchange's REST market data (see the module docstring for the contract)."""

    name: str
    capabilities: Capabilities
    requests: int
    used_weight: int | None

    def instruments(self, symbols: Sequence[str] | None = None) -> list[InstrumentInfo]: ...

    def trading_instruments(self) -> list[InstrumentInfo]: ...

    def klines(
        self, symbol: str, interval: str, start: datetime, end: datetime, limit: int = 1000
    ) -> list[CandleBar]: ...

    def trades_from_id(
        self, symbol: str, from_id: int, limit: int = 1000, *, since: datetime | None = None
    ) -> list[TradeTick]: ...

    def trades_by_time(self, symbol: str, start: datetime, end: datetime, limit: int = 1000) -> list[TradeTick]: ...

    def latest_trades(self, symbol: str, limit: int = 1) -> list[TradeTick]: ...

    def close(self) -> None: ...
