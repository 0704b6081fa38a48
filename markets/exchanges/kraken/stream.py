"""Kraken's WebSocket v2 trade channel. Pure: no socket, no Django.

Symbols are the pairs' altnames (``XBTUSD``) as stored; the socket speaks ``BTC/USD``. The subscription asks
for the trade snapshot (the latest 50 trades), so right after every (re)connect the stream sees where the
venue is and opens the gap of what it missed at once, even in a quiet market. ``heartbeat`` frames (about
one a second) tell the watchdog the socket is alive while nothing trades; ``status``, acknowledgements and
pongs carry nothing; a rejected subscription is a ValueError saying why.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from ..base import Liveness, Source, StreamEvent
from ..symbols import canonical, venue_symbol
from .parse import EXCHANGE
from .ws import WsKind, kind_of, parse_ws_trade

# ``{"channel":"heartbeat"}`` comes about once a second when nothing else does; the socket answers pings as well.
LIVENESS = Liveness(answers_pings=True, heartbeat_seconds=1.0)
_request_ids = itertools.count(1)  # the ``req_id`` of each request, unique in the process


@dataclass(frozen=True, slots=True)
class KrakenStream:
    """The :class:`~markets.exchanges.base.StreamAdapter` of Kraken for ``symbols`` (altnames such as
    ``XBTUSD``) at ``ws_url`` (``wss://ws.kraken.com/v2`` or the simulator's). With no pairs it is a template for
    ``for_symbols``."""

    ws_url: str
    symbols: tuple[str, ...]
    name: str = EXCHANGE
    liveness: Liveness = LIVENESS

    def __post_init__(self) -> None:
        self.ws_names()  # a symbol that does not map is an error now, not at the first connect

    def ws_names(self, symbols: Sequence[str] | None = None) -> list[str]:
        """The WebSocket names (``BTC/USD``) of ``symbols``, the adapter's own by default."""
        return [
            venue_symbol(EXCHANGE, canonical(EXCHANGE, s), form="ws")
            for s in (self.symbols if symbols is None else symbols)
        ]

    def url(self) -> str:
        return self.ws_url

    def subscribe(self) -> list[str]:
        if not self.symbols:
            raise ValueError("no pairs to stream")
        return self.subscribe_to(self.symbols)

    def for_symbols(self, symbols: tuple[str, ...]) -> KrakenStream:
        return replace(self, symbols=tuple(symbols))

    def subscribe_to(self, symbols: Sequence[str]) -> list[str]:
        """``{"method": "subscribe", "req_id": 1, "params": {"channel": "trade", "symbol": ["BTC/USD"],
        "snapshot": true}}``: the snapshot (the latest 50 trades) tells where each pair is at once."""
        return self._request("subscribe", symbols, snapshot=True)

    def unsubscribe_from(self, symbols: Sequence[str]) -> list[str]:
        return self._request("unsubscribe", symbols)

    def _request(self, method: str, symbols: Sequence[str], **extra: object) -> list[str]:
        if not symbols:
            return []
        params = {"channel": "trade", "symbol": self.ws_names(symbols), **extra}
        return [json.dumps({"method": method, "req_id": next(_request_ids), "params": params})]

    def parse(self, message: str | bytes, received_at: datetime) -> StreamEvent | None:
        try:
            frame = json.loads(message, parse_float=Decimal)
        except ValueError as exc:
            raise ValueError(f"Kraken frame is not JSON: {exc}") from None
        kind = kind_of(frame)
        if kind is WsKind.TRADE:
            return StreamEvent(ticks=tuple(parse_ws_trade(frame, received_at=received_at, source=Source.WS)))
        if kind is WsKind.REJECTED:
            raise ValueError(f"Kraken refused the subscription: {frame.get('error')!r}")
        return None
