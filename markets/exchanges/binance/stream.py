"""Binance Spot market streams: the combined-stream URL and its frames. Pure: no socket, no Django."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from ..base import Source, TradeTick
from .parse import parse_agg_trade

STREAM_KINDS = ("aggTrade",)  # raw @trade ids are another id space than the aggregate-trade ids ticks use


def stream_url(ws_base: str, symbols: Sequence[str], kind: str = "aggTrade") -> str:
    """The combined-stream URL of ``kind`` for ``symbols``, e.g.
    ``wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade``."""
    if kind not in STREAM_KINDS:
        raise ValueError(f"stream kind {kind!r} is not supported; use one of {', '.join(STREAM_KINDS)}")
    if not symbols:
        raise ValueError("no symbols to stream")
    return f"{ws_base.rstrip('/')}/stream?streams=" + "/".join(f"{s.lower()}@{kind}" for s in symbols)


def parse_stream_message(text: str | bytes, *, received_at: datetime) -> TradeTick | None:
    """A combined-stream frame as a tick, or None for frames that carry no trade (subscription answers)::

        {"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "E": 1723161255343, "s": "BTCUSDT",
         "a": 3041249807, "p": "61837.63000000", "q": "0.06800000", "f": 3735683259, "l": 3735683260,
         "T": 1723161255342, "m": true, "M": true}}

    A malformed frame is a ValueError naming what is wrong.
    """
    try:
        frame = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"stream frame is not JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise ValueError(f"stream frame is not an object: {str(text)[:80]!r}")
    data = frame.get("data")
    if data is None:
        return None  # {"result": null, "id": 1} and the like
    if not isinstance(data, dict) or data.get("e") != "aggTrade":
        raise ValueError(f"unexpected stream frame: {str(text)[:120]!r}")
    return parse_agg_trade(data, received_at=received_at, source=Source.WS)
