"""Live push: what the stream process announces on the channel layer about the market, to which group, in which shape.

The stream publishes; Daphne's consumers relay to browsers. Every message is a
channel-layer event whose ``type`` names the consumer handler and whose ``data`` is sent to the browser
as it is (JSON: prices and quantities as decimal strings, times as epoch milliseconds):

* ``market.trades``: ``{"trades": [{"id", "price", "qty", "side", "time"}, ...], "count": n}``, the last
  trades of one flush (at most ``TRADES_PER_MESSAGE``; ``count`` is how many the flush held);
* ``market.candles``: ``{"candles": [{"time", "open", "high", "low", "close", "volume", "trades", "closed"}]}``,
  1m candles rebuilt from storage (new minutes, and minutes a gap fill touched);
* ``market.feed``: the symbol's Feed record (state, last trade, lag, reconnects, last error);
* ``market.gap``: a Gap as it opens and as it ends (ids, missing, recovered, recovery time, time span).

Group names: ``market.<exchange>.<symbol>`` per symbol, ``prices`` for every last price (the admin).

The stream's listeners announce their own events through the same publisher (``Publisher.event``): the signal
listener's ``market.signals`` (``signals.live``), the trader's ``orders.update`` (``orders.live``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from . import metrics
from .documents import to_ms
from .exchanges.base import CandleBar, TradeTick
from .models import Feed, Gap

log = logging.getLogger(__name__)
PRICES_GROUP = "prices"
TRADES_PER_MESSAGE = 100


def market_group(exchange: str, symbol: str) -> str:
    """The channel-layer group of one (exchange, symbol)'s live events."""
    return f"market.{exchange}.{symbol}"


def _ms(t: datetime | None) -> int | None:
    return None if t is None else to_ms(t)


def trade_data(t: TradeTick) -> dict[str, Any]:
    return {"id": t.trade_id, "price": str(t.price), "qty": str(t.qty), "side": t.taker_side, "time": to_ms(t.ts)}


def candle_data(c: CandleBar) -> dict[str, Any]:
    return {
        "time": to_ms(c.open_time),
        "open": str(c.open),
        "high": str(c.high),
        "low": str(c.low),
        "close": str(c.close),
        "volume": str(c.volume),
        "trades": c.trades,
        "closed": c.closed,
        "source": c.source,
        "synthetic": c.synthetic,
    }


def feed_data(feed: Feed, *, now: datetime | None = None) -> dict[str, Any]:
    lag = None
    if now is not None and feed.last_trade_at is not None:
        lag = round(max(0.0, (now - feed.last_trade_at).total_seconds()), 3)
    return {
        "exchange": feed.exchange,
        "symbol": feed.symbol,
        "state": feed.state,
        "last_trade_id": feed.last_trade_id,
        "last_trade_time": _ms(feed.last_trade_at),
        "lag_seconds": lag,
        "reconnects": feed.reconnects,
        "last_error": feed.last_error,
    }


def gap_data(
    gap: Gap, *, span: tuple[datetime | None, datetime | None] = (None, None), seconds: float | None = None
) -> dict[str, Any]:
    """A Gap for the page: its ids and counts, the exchange-time span it covers (the last trade before the
    hole and the first after it, when known) and, once ended, how long recovery took."""
    return {
        "id": str(gap.pk),
        "kind": gap.kind,
        "state": gap.state,
        "first_id": gap.start,
        "last_id": gap.end,
        "missing": gap.missing,
        "recovered": gap.recovered,
        "reason": gap.reason,
        "from": _ms(span[0]),
        "to": _ms(span[1]),
        "detected": _ms(gap.detected_at),
        "seconds": None if seconds is None else round(seconds, 3),
    }


class Publisher:
    """Sends the stream's events to the channel layer; a failing layer is logged (once a minute), never
    raised: the live page is a view of the record, and the record must keep flowing without it."""

    def __init__(self, layer: Any, exchange: str) -> None:
        self.layer = layer
        self.exchange = exchange
        self._warned = 0.0

    async def event(self, group: str, event: dict[str, Any]) -> None:
        """Send ``event`` (``{"type": ..., "data": ...}``) to ``group``; a failure is logged, never raised."""
        if self.layer is None:
            return
        try:
            await self.layer.group_send(group, event)
        except Exception as exc:  # Redis down or slow: the stream goes on
            metrics.publish_failures.labels(self.exchange).inc()
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                log.warning("%s: live push failed (%r); the stream goes on", self.exchange, exc)

    async def _send(self, group: str, type_: str, data: dict[str, Any]) -> None:
        await self.event(group, {"type": type_, "data": data})

    async def trades(self, batch: Sequence[TradeTick]) -> None:
        """One message per symbol of the flush: its last trades and its count; and each last price."""
        by_symbol: dict[str, list[TradeTick]] = {}
        for tick in batch:
            by_symbol.setdefault(tick.symbol, []).append(tick)
        for symbol, ticks in by_symbol.items():
            await self._send(
                market_group(self.exchange, symbol),
                "market.trades",
                {"trades": [trade_data(t) for t in ticks[-TRADES_PER_MESSAGE:]], "count": len(ticks)},
            )
            last = ticks[-1]
            await self._send(
                PRICES_GROUP,
                "prices.update",
                {"exchange": self.exchange, "symbol": symbol, "price": str(last.price), "time": to_ms(last.ts)},
            )

    async def candles(self, symbol: str, bars: Iterable[CandleBar]) -> None:
        data = [candle_data(c) for c in bars if c.interval == "1m"]
        if data:
            await self._send(market_group(self.exchange, symbol), "market.candles", {"candles": data})

    async def feed(self, feed: Feed, now: datetime) -> None:
        await self._send(market_group(self.exchange, feed.symbol), "market.feed", feed_data(feed, now=now))

    async def gap(
        self, gap: Gap, *, span: tuple[datetime | None, datetime | None] = (None, None), seconds: float | None = None
    ) -> None:
        await self._send(
            market_group(self.exchange, gap.symbol), "market.gap", gap_data(gap, span=span, seconds=seconds)
        )
