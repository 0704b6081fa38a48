"""Coinbase Exchange's WebSocket feed: the matches and heartbeat channels. Pure: no socket, no Django.

After connecting, a subscribe must be sent within 5 s. The first frame of the matches channel per product is
``last_match`` (the latest trade before the subscription: on a reconnect, what tells the stream how much it
missed), then a ``match`` per trade. Matches may be dropped by the feed without the socket closing; the
heartbeat, every second per product, carries ``last_trade_id``, so a dropped match is found within a second.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from ..base import Liveness, Source, StreamEvent, TradeTick
from .parse import EXCHANGE, parse_heartbeat, parse_match

CHANNELS = ("matches", "heartbeat")
# The heartbeat channel sends a frame a second per product, trades or not; the feed answers pings as well.
LIVENESS = Liveness(answers_pings=True, heartbeat_seconds=1.0)


@dataclass(frozen=True, slots=True)
class CoinbaseStream:
    """The :class:`~markets.exchanges.base.StreamAdapter` of Coinbase Exchange for ``symbols`` (product ids such
    as ``BTC-USD``) at ``ws_url`` (``wss://ws-feed.exchange.coinbase.com`` or the simulator's). With no products it
    is a template for ``for_symbols``."""

    ws_url: str
    symbols: tuple[str, ...]
    name: str = EXCHANGE
    liveness: Liveness = LIVENESS

    def url(self) -> str:
        return self.ws_url

    def subscribe(self) -> list[str]:
        if not self.symbols:
            raise ValueError("no products to stream")
        return self.subscribe_to(self.symbols)

    def for_symbols(self, symbols: tuple[str, ...]) -> CoinbaseStream:
        return replace(self, symbols=tuple(symbols))

    def subscribe_to(self, symbols: Sequence[str]) -> list[str]:
        """``{"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["matches", "heartbeat"]}`` (none for no
        product: an empty list would mean every product of the channels)."""
        return (
            []
            if not symbols
            else [json.dumps({"type": "subscribe", "product_ids": list(symbols), "channels": list(CHANNELS)})]
        )

    def unsubscribe_from(self, symbols: Sequence[str]) -> list[str]:
        """``{"type": "unsubscribe", "product_ids": ["BTC-USD"], "channels": ["matches", "heartbeat"]}`` (none for
        no product: an empty list would unsubscribe every one)."""
        return (
            []
            if not symbols
            else [json.dumps({"type": "unsubscribe", "product_ids": list(symbols), "channels": list(CHANNELS)})]
        )

    def parse(self, message: str | bytes, received_at: datetime) -> TradeTick | StreamEvent | None:
        """A match as a tick, a heartbeat as the last id it vouches for, anything else None; an error frame
        or a malformed one is a ValueError saying what."""
        try:
            frame = json.loads(message)
        except ValueError as exc:
            raise ValueError(f"Coinbase frame is not JSON: {exc}") from None
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind in ("match", "last_match"):
            return parse_match(frame, received_at=received_at, source=Source.WS)
        if kind == "heartbeat":
            product, last_id, _ = parse_heartbeat(frame)
            return StreamEvent(last_ids=((product, last_id),))
        if kind == "error":
            raise ValueError(f"Coinbase says: {frame.get('message')!r} ({frame.get('reason')!r})")
        if kind is None:
            raise ValueError(f"Coinbase frame without a type: {str(message)[:120]!r}")
        return None  # subscriptions, and channels not asked for
