"""Coinbase Exchange REST market data (:class:`markets.exchanges.base.RestAdapter`). No Django here.

Trades are paged by trade-id cursor: ``after=N`` answers the trades with ids below ``N``, newest first, so
the ids ``[from_id, from_id + limit)`` are one request (``after=from_id + limit``). Candles come newest first,
at most 300 a request, and a minute without trades has none (``klines_omit_quiet``). Public endpoints allow
about 10 requests a second; a 429 is retried after a back-off (Coinbase sends no Retry-After).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..base import CandleBar, Capabilities, InstrumentInfo, Source, TradeTick
from ..errors import BadRequest
from ..http import JsonRestAdapter, check_range, page_limit
from ..limiter import VenueLimiter
from ..retry import OnWait, RetryPolicy
from .parse import EXCHANGE, GRANULARITIES, parse_candles, parse_error, parse_products, parse_trades

CAPABILITIES = Capabilities(
    ids_contiguous=True,
    max_klines=300,
    max_trades=1000,
    klines_omit_quiet=True,
    trades_time_window=None,
    intervals=tuple(GRANULARITIES.values()),
)
SECONDS = {interval: seconds for seconds, interval in GRANULARITIES.items()}
ONLINE = "online"  # a product's status while it trades (others: offline, internal, delisted)
MAX_PAGES_BY_TIME = 200  # trades by time page back from the newest: this many pages at most (200,000 trades)


class CoinbaseRest(JsonRestAdapter):
    """Coinbase Exchange public market data at ``base_url`` (``https://api.exchange.coinbase.com`` or the
    simulator's ``http://host:port/coinbase``). Not thread-safe: one instance per thread."""

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
            parse_error,
            policy=policy,
            timeout=timeout,
            sleep=sleep,
            on_wait=on_wait,
            limiter=limiter,
        )

    def instruments(self, symbols: Sequence[str] | None = None) -> list[InstrumentInfo]:
        """Every product (``symbols`` None) or the named ones; BadRequest naming any that is unknown."""
        if isinstance(symbols, str):
            raise ValueError(f"symbols must be a list of product ids, got the string {symbols!r}")
        products = self.http.get("/products", {}, lambda body, _: parse_products(body))
        if symbols is None:
            return products
        by_id = {p.symbol: p for p in products}
        unknown = [s for s in symbols if s not in by_id]
        if unknown:
            raise BadRequest(
                EXCHANGE, f"unknown product(s) {', '.join(map(repr, unknown))}", status=404, msg="NotFound"
            )
        return [by_id[s] for s in symbols]

    def trading_instruments(self) -> list[InstrumentInfo]:
        """Every product whose status is online, from one /products request."""
        return [i for i in self.instruments() if i.status == ONLINE]

    def klines(self, symbol: str, interval: str, start: datetime, end: datetime, limit: int = 300) -> list[CandleBar]:
        """Candles whose open time is in ``[start, end)``, oldest first, at most ``limit`` (300) from ``start``
        on; minutes without trades are absent."""
        if interval not in SECONDS:
            raise ValueError(f"unsupported interval {interval!r}; use one of {', '.join(SECONDS)}")
        check_range(start, end)
        step = timedelta(seconds=SECONDS[interval])
        end = min(end, start + step * page_limit(limit, self.capabilities.max_klines))
        if end <= start:
            return []
        params = {"granularity": SECONDS[interval], "start": _iso(start), "end": _iso(end - timedelta(seconds=1))}

        def parse(body: Any, _: Mapping[str, str]) -> list[CandleBar]:
            bars = parse_candles(body, symbol=symbol, granularity=SECONDS[interval], now=datetime.now(UTC))
            return [b for b in bars if start <= b.open_time < end]

        return self.http.get(f"/products/{symbol}/candles", params, parse)

    def trades_from_id(
        self, symbol: str, from_id: int, limit: int = 1000, *, since: datetime | None = None
    ) -> list[TradeTick]:
        """Up to ``limit`` (at most 1000) trades with ids from ``from_id`` up, in id order (by id cursor:
        ``since`` is not needed)."""
        if isinstance(from_id, bool) or not isinstance(from_id, int) or from_id < 0:
            raise ValueError(f"from_id must be a non-negative integer, got {from_id!r}")
        limit = page_limit(limit, self.capabilities.max_trades)
        page = self._trades(symbol, {"after": from_id + limit, "limit": limit})
        return [t for t in page if t.trade_id >= from_id]

    def trades_by_time(self, symbol: str, start: datetime, end: datetime, limit: int = 1000) -> list[TradeTick]:
        """Up to ``limit`` trades with exchange time in ``[start, end)``, oldest first. Coinbase has no time
        filter on trades: pages are read back from the newest until one reaches before ``start``."""
        check_range(start, end)
        limit = page_limit(limit, self.capabilities.max_trades)
        found: list[TradeTick] = []
        params: dict[str, Any] = {"limit": self.capabilities.max_trades}
        for _ in range(MAX_PAGES_BY_TIME):
            page = self._trades(symbol, params)
            found = [t for t in page if start <= t.ts < end] + found
            if not page or page[0].ts < start or page[0].trade_id <= 1:
                return found[:limit]
            params = {"after": page[0].trade_id, "limit": self.capabilities.max_trades}
        raise ValueError(
            f"{start.isoformat()} is more than {MAX_PAGES_BY_TIME} pages of {symbol} trades back; "
            "page by id with trades_from_id"
        )

    def latest_trades(self, symbol: str, limit: int = 1) -> list[TradeTick]:
        """The ``limit`` (at most 1000) most recent trades, oldest first."""
        return self._trades(symbol, {"limit": page_limit(limit, self.capabilities.max_trades)})

    def _trades(self, symbol: str, params: Mapping[str, Any]) -> list[TradeTick]:
        return self.http.get(
            f"/products/{symbol}/trades",
            params,
            lambda body, _: parse_trades(body, symbol=symbol, received_at=datetime.now(UTC), source=Source.REST),
        )


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
