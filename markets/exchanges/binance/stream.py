"""Binance Spot market streams: the combined-stream URL and its frames. Pure: no socket, no Django.

``parse_stream_message`` runs once per live frame (10,000+ a second under load), so a well-formed frame
takes a short path: a few exact type tests, then the record. Anything that path does not accept goes
through :func:`.parse.parse_agg_trade`, which gives the same record or a ``ValueError`` naming the field.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ..base import Liveness, Source, TradeTick
from .parse import EPOCH, EXCHANGE, parse_agg_trade

STREAM_KINDS = ("aggTrade",)  # raw @trade ids are another id space than the aggregate-trade ids ticks use
# A quiet symbol sends nothing at all; the server pings every 20 s and answers our pings (each counts against its
# 5 incoming messages a second), so a silent socket is asked.
LIVENESS = Liveness(answers_pings=True, heartbeat_seconds=None)
# A socket opens with at most this many streams in its URL (a request line past ~8 KB is refused by many servers);
# the rest of its streams, and those added later, go in SUBSCRIBE messages of at most PARAMS_PER_MESSAGE each.
URL_STREAMS = 100
PARAMS_PER_MESSAGE = 200
_request_ids = itertools.count(1)  # the ``id`` of each control message, unique in the process


def stream_url(ws_base: str, symbols: Sequence[str], kind: str = "aggTrade") -> str:
    """The combined-stream URL of ``kind`` for ``symbols``, e.g.
    ``wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade``."""
    _check_kind(kind)
    if not symbols:
        raise ValueError("no symbols to stream")
    return f"{ws_base.rstrip('/')}/stream?streams=" + "/".join(stream_names(symbols, kind))


def stream_names(symbols: Sequence[str], kind: str) -> list[str]:
    """Binance's stream names of ``symbols``: ``btcusdt@aggTrade``."""
    return [f"{s.lower()}@{kind}" for s in symbols]


def control_messages(method: str, names: Sequence[str]) -> list[str]:
    """``SUBSCRIBE``/``UNSUBSCRIBE`` messages for the stream ``names``, at most ``PARAMS_PER_MESSAGE`` each::

    {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "ethusdt@aggTrade"], "id": 1}
    """
    return [
        json.dumps({"method": method, "params": list(names[i : i + PARAMS_PER_MESSAGE]), "id": next(_request_ids)})
        for i in range(0, len(names), PARAMS_PER_MESSAGE)
    ]


def _check_kind(kind: str) -> None:
    if kind not in STREAM_KINDS:
        raise ValueError(f"stream kind {kind!r} is not supported; use one of {', '.join(STREAM_KINDS)}")


@dataclass(frozen=True, slots=True)
class BinanceStream:
    """The :class:`~markets.exchanges.base.StreamAdapter` of Binance: the combined stream of ``kind`` for
    ``symbols`` on ``ws_base``. The URL subscribes the first ``URL_STREAMS`` symbols; ``subscribe()`` the rest, in
    SUBSCRIBE messages (none for a few symbols). With no symbols it is a template for ``for_symbols``."""

    ws_base: str
    symbols: tuple[str, ...]
    kind: str = "aggTrade"
    name: str = EXCHANGE
    liveness: Liveness = LIVENESS

    def __post_init__(self) -> None:
        _check_kind(self.kind)  # an unsupported kind is an error now, not at the first connect

    def url(self) -> str:
        return stream_url(self.ws_base, self.symbols[:URL_STREAMS], self.kind)

    def subscribe(self) -> list[str]:
        return self.subscribe_to(self.symbols[URL_STREAMS:])

    def for_symbols(self, symbols: tuple[str, ...]) -> BinanceStream:
        return replace(self, symbols=tuple(symbols))

    def subscribe_to(self, symbols: Sequence[str]) -> list[str]:
        return control_messages("SUBSCRIBE", stream_names(symbols, self.kind))

    def unsubscribe_from(self, symbols: Sequence[str]) -> list[str]:
        return control_messages("UNSUBSCRIBE", stream_names(symbols, self.kind))

    def parse(self, message: str | bytes, received_at: datetime) -> TradeTick | None:
        return parse_stream_message(message, received_at=received_at)


def parse_stream_message(text: str | bytes, *, received_at: datetime) -> TradeTick | None:
    """A combined-stream frame as a tick, or None for frames that carry no trade (``{"result": null, "id": 1}``
    answers); a refused request (``{"code": 2, "msg": "Invalid request: ...", "id": 3}``) is a ValueError quoting it::

        {"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "E": 1723161255343, "s": "BTCUSDT",
         "a": 3041249807, "p": "61837.63000000", "q": "0.06800000", "f": 3735683259, "l": 3735683260,
         "T": 1723161255342, "m": true, "M": true}}

    The tick is the one ``parse_agg_trade(data, source=Source.WS)`` gives. A malformed frame is a
    ValueError naming what is wrong.
    """
    try:
        frame = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not UTF-8
        raise ValueError(f"stream frame is not JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise ValueError(f"stream frame is not an object: {str(text)[:80]!r}")
    data = frame.get("data")
    if data is None:
        if "code" in frame and "msg" in frame:
            raise ValueError(
                f"Binance refused request {frame.get('id')!r}: {frame['msg']!r:.200} (code {frame['code']})"
            )
        return None  # {"result": null, "id": 1} and the like
    return _agg_trade(data, received_at) or _agg_trade_checked(data, text, received_at)


def _agg_trade(data: Any, received_at: datetime) -> TradeTick | None:
    """The tick of a well-formed aggTrade ``data``, or None for anything unusual (checked elsewhere): every
    value of exactly the type Binance sends, no negative number, and an aware receive time."""
    try:
        kind, symbol, agg_id, price_text, qty_text = data["e"], data["s"], data["a"], data["p"], data["q"]
        first, last, ms, buyer_is_maker = data["f"], data["l"], data["T"], data["m"]
        if not (
            kind == "aggTrade"
            and type(symbol) is str
            and symbol
            and type(buyer_is_maker) is bool
            and type(price_text) is str
            and type(qty_text) is str
            and type(agg_id) is int
            and type(first) is int
            and type(last) is int
            and type(ms) is int
            and agg_id >= 0
            and first >= 0
            and last >= 0
            and ms >= 0
            and type(received_at) is datetime
            and received_at.utcoffset() is not None
        ):
            return None
        price, qty = Decimal(price_text), Decimal(qty_text)
        if not (price.is_finite() and qty.is_finite() and price >= 0 and qty >= 0):
            return None
        ts = EPOCH + timedelta(milliseconds=ms)
    except (KeyError, TypeError, InvalidOperation, OverflowError):
        return None
    return TradeTick(
        EXCHANGE,
        symbol,
        agg_id,
        price,
        qty,
        "sell" if buyer_is_maker else "buy",
        ts,
        received_at,
        Source.WS,
        first,
        last,
    )


def _agg_trade_checked(data: Any, text: str | bytes, received_at: datetime) -> TradeTick:
    if not isinstance(data, dict) or data.get("e") != "aggTrade":
        raise ValueError(f"unexpected stream frame: {str(text)[:120]!r}")
    return parse_agg_trade(data, received_at=received_at, source=Source.WS)
