"""Kraken Spot public REST market data (:class:`markets.exchanges.base.RestAdapter`). No Django here.

Kraken pages trades only by time: ``Trades?since=<ns>`` answers up to 1000 trades after that time, oldest
first, with ``last`` (the cursor of the next page). So ``trades_from_id`` needs the time of the trade before
the id (``since``), which the stream and the backfill know from storage; ids are checked against the answer.
``OHLC`` serves only the most recent 720 bars of an interval, whatever ``since`` says; its last row is the
bar still open. Every answer is the ``{"error": [...], "result": ...}`` envelope, unwrapped by the parser.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..base import CandleBar, Capabilities, InstrumentInfo, Source, TradeTick
from ..http import JsonRestAdapter, check_range, page_limit
from ..limiter import VenueLimiter
from ..retry import OnWait, RetryPolicy
from .parse import EPOCH, EXCHANGE, INTERVALS, parse_asset_pairs, parse_ohlc, parse_trades

CAPABILITIES = Capabilities(
    ids_contiguous=True,
    max_klines=721,  # the last 720 committed bars and the open one
    max_trades=1000,
    klines_omit_quiet=False,
    trades_time_window=None,
    intervals=("1m", "5m", "15m", "30m", "1h", "4h", "1d"),
)
ONLINE = "online"  # a pair's status while it trades (others: cancel_only, post_only, limit_only, reduce_only)
MINUTES = {interval: minutes for minutes, interval in INTERVALS.items()}


class KrakenRest(JsonRestAdapter):
    """Kraken public market data at ``base_url`` (``https://api.kraken.com`` or the simulator's
    ``http://host:port/kraken``); symbols are pair altnames (``XBTUSD``). Not thread-safe: one per thread."""

    name = EXCHANGE
    capabilities = CAPABILITIES

    def __init__(
        self,
        base_url: str,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        sleep: Callable[[float], object] = time.sleep,
        on_wait: OnWait | None = None,
        limiter: VenueLimiter | None = None,
    ) -> None:
        super().__init__(
            EXCHANGE,
            base_url,
            _error_message,
            policy=policy,
            timeout=timeout,
            sleep=sleep,
            on_wait=on_wait,
            limiter=limiter,
        )

    def instruments(self, symbols: Sequence[str] | None = None) -> list[InstrumentInfo]:
        """Every pair (``symbols`` None) or the named altnames; Kraken answers an unknown one with an error."""
        if isinstance(symbols, str):
            raise ValueError(f"symbols must be a list of pair names, got the string {symbols!r}")
        if symbols is not None and not symbols:
            return []
        params = {} if symbols is None else {"pair": ",".join(symbols)}
        return self.http.get("/0/public/AssetPairs", params, lambda body, _: parse_asset_pairs(body))

    def trading_instruments(self) -> list[InstrumentInfo]:
        """Every pair whose status is online, from one AssetPairs request."""
        return [i for i in self.instruments() if i.status == ONLINE]

    def klines(self, symbol: str, interval: str, start: datetime, end: datetime, limit: int = 721) -> list[CandleBar]:
        """Bars whose open time is in ``[start, end)``, oldest first, at most ``limit``; only the most recent 720
        of the interval exist, so an older range comes back short (or empty)."""
        if interval not in MINUTES:
            raise ValueError(f"unsupported interval {interval!r}; use one of {', '.join(MINUTES)}")
        check_range(start, end)
        page_limit(limit, self.capabilities.max_klines)
        params = {"pair": symbol, "interval": MINUTES[interval], "since": int((start - EPOCH).total_seconds()) - 1}

        def parse(body: Any, _: Mapping[str, str]) -> list[CandleBar]:
            bars, _last = parse_ohlc(body, interval=MINUTES[interval], symbol=symbol)
            return [b for b in bars if start <= b.open_time < end][:limit]

        return self.http.get("/0/public/OHLC", params, parse)

    def trades_from_id(
        self, symbol: str, from_id: int, limit: int = 1000, *, since: datetime | None = None
    ) -> list[TradeTick]:
        """Up to ``limit`` trades with ids from ``from_id`` up, in id order, read from ``since`` (the time of the
        trade before ``from_id``; required: Kraken pages only by time)."""
        if isinstance(from_id, bool) or not isinstance(from_id, int) or from_id < 0:
            raise ValueError(f"from_id must be a non-negative integer, got {from_id!r}")
        if since is None:
            raise ValueError(
                f"Kraken pages trades by time only: trades from id {from_id} need the time of the "
                "trade before it (since)"
            )
        check_range(since, since)
        page = self._trades(symbol, {"since": _ns(since) - 1, "count": page_limit(limit, self.capabilities.max_trades)})
        return [t for t in page if t.trade_id >= from_id][:limit]

    def trades_by_time(self, symbol: str, start: datetime, end: datetime, limit: int = 1000) -> list[TradeTick]:
        """Up to ``limit`` (at most 1000) trades with exchange time in ``[start, end)``, oldest first."""
        check_range(start, end)
        page = self._trades(symbol, {"since": _ns(start) - 1, "count": page_limit(limit, self.capabilities.max_trades)})
        return [t for t in page if start <= t.ts < end]

    def latest_trades(self, symbol: str, limit: int = 1) -> list[TradeTick]:
        """The ``limit`` (at most 1000) most recent trades, oldest first."""
        limit = page_limit(limit, self.capabilities.max_trades)
        return self._trades(symbol, {"count": limit})[-limit:]

    def _trades(self, symbol: str, params: Mapping[str, Any]) -> list[TradeTick]:
        def parse(body: Any, _: Mapping[str, str]) -> list[TradeTick]:
            ticks, _last = parse_trades(body, received_at=datetime.now(UTC), source=Source.REST, symbol=symbol)
            return ticks

        return self.http.get("/0/public/Trades", {"pair": symbol, **params}, parse)


def _error_message(body: Any) -> str:
    errors = body.get("error") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors:
        raise ValueError("no Kraken error list")
    return "; ".join(map(str, errors))


def _ns(t: datetime) -> int:
    """Nanoseconds since the epoch, exactly (datetimes hold microseconds)."""
    return (t - EPOCH) // timedelta(microseconds=1) * 1000
