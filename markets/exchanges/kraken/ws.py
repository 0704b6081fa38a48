"""Kraken WebSocket v2 messages parsed into the normalized records. Pure: no socket, no Django.

Every value is a JSON number (decode with ``json.loads(text, parse_float=Decimal)`` to keep the wire's digits;
see :mod:`.parse` for floats) and times are RFC 3339 strings with up to 9 fractional digits, truncated to the
microsecond. The venue symbol is the pair's altname (``BTC/USD`` on the wire -> ``XBTUSD``), as in
:mod:`.parse`, so a trade seen on the socket and the same trade read by REST are one record.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ..base import CandleBar, Source, TradeTick
from ..fields import iso_time
from .parse import _aware, _bar, _decimal, _get, _int, _interval, _mapping, _text, _tick, _venue


class WsKind(StrEnum):
    """What a WebSocket v2 message is (:func:`kind_of`); only TRADE and OHLC carry market data."""

    STATUS = "status"  # {"channel": "status", "type": "update", "data": [{"system": "online", ...}]}
    HEARTBEAT = "heartbeat"  # {"channel": "heartbeat"}
    PONG = "pong"  # {"method": "pong", "req_id": 101, "time_in": "...", "time_out": "..."}
    ACK = "ack"  # {"method": "subscribe", "result": {"channel": "trade", ...}, "success": true, ...}
    REJECTED = "rejected"  # {"method": "subscribe", "error": "Currency pair not supported", "success": false}
    TRADE = "trade"  # parse_ws_trade
    OHLC = "ohlc"  # parse_ws_ohlc


CHANNELS = {k: WsKind(k) for k in ("status", "heartbeat", "trade", "ohlc")}


# -- messages ---------------------------------------------------------------------------------------------
def kind_of(frame: Any) -> WsKind:
    """What a WebSocket v2 message is (see :class:`WsKind`); an unknown method or channel is a ValueError."""
    f = _mapping(frame, "ws message")
    if "method" in f:
        if f["method"] == "pong":
            return WsKind.PONG
        if isinstance(f.get("success"), bool):
            return WsKind.ACK if f["success"] else WsKind.REJECTED
        raise ValueError(f"ws message with 'method' {f['method']!r:.40} has no boolean 'success'")
    channel = f.get("channel")
    kind = CHANNELS.get(channel) if isinstance(channel, str) else None
    if kind is None:
        raise ValueError(f"ws message field 'channel' is unknown: {channel!r:.40}")
    return kind


def parse_ws_trade(frame: Any, *, received_at: datetime, source: Source = Source.WS) -> list[TradeTick]:
    """A ``trade`` channel message (``type`` snapshot or update), one tick per entry::

    {"channel": "trade", "type": "update", "data": [{"symbol": "MATIC/USD", "side": "sell", "price": 0.5117,
     "qty": 40.0, "ord_type": "market", "trade_id": 4665906, "timestamp": "2023-09-25T07:49:37.708706Z"}]}
    """
    ticks = []
    for d in _ws_data(frame, "trade"):
        side = _get(d, "side", "trade")
        if side not in ("buy", "sell"):
            raise ValueError(f"trade field 'side' must be 'buy' or 'sell', got {side!r:.40}")
        trade_id = _int(d, "trade_id", "trade")
        price, qty = _decimal(d, "price", "trade", number=True), _decimal(d, "qty", "trade", number=True)
        symbol, ts = _venue(_text(d, "symbol", "trade")), _rfc3339(d, "timestamp", "trade")
        ticks.append(_tick(symbol, trade_id, price, qty, side, ts, received_at, source))
    return ticks


def parse_ws_ohlc(frame: Any, *, now: datetime) -> list[CandleBar]:
    """An ``ohlc`` channel message, one bar per entry keyed by ``interval_begin``; there is no closed flag, so
    ``closed`` is whether the bar's close time is before ``now`` (as for Binance klines)::

        {"channel": "ohlc", "type": "snapshot", "timestamp": "2023-10-04T16:26:01.806315597Z", "data": [
         {"symbol": "ALGO/USD", "open": 0.09875, "high": 0.09875, "low": 0.09875, "close": 0.09875, "trades": 1,
          "volume": 201.86015, "vwap": 0.09875, "interval_begin": "2023-10-04T15:25:00.000000000Z",
          "interval": 5, "timestamp": "2023-10-04T15:30:00.000000Z"}]}
    """
    _aware(now, "now")
    bars = []
    for d in _ws_data(frame, "ohlc"):
        minutes = _int(d, "interval", "ohlc")
        name, start = _interval(minutes, "ohlc field 'interval'"), _rfc3339(d, "interval_begin", "ohlc")
        v = {k: _decimal(d, k, "ohlc", number=True) for k in ("open", "high", "low", "close", "volume")}
        close_time = start + timedelta(minutes=minutes, milliseconds=-1)
        trades, symbol = _int(d, "trades", "ohlc"), _venue(_text(d, "symbol", "ohlc"))
        bars.append(_bar(symbol, name, start, minutes, v, trades, close_time < now))
    return bars


def _ws_data(frame: Any, channel: str) -> list[Mapping[str, Any]]:
    f = _mapping(frame, f"{channel} message")
    if f.get("channel") != channel:
        raise ValueError(f"{channel} message field 'channel' must be {channel!r}, got {f.get('channel')!r:.40}")
    if f.get("type") not in ("snapshot", "update"):
        raise ValueError(f"{channel} message field 'type' must be 'snapshot' or 'update', got {f.get('type')!r:.40}")
    data = _get(f, "data", f"{channel} message")
    if not isinstance(data, list):
        raise ValueError(f"{channel} message field 'data' must be an array, got {data!r:.80}")
    return [_mapping(d, channel) for d in data]


def _rfc3339(obj: Mapping[str, Any], key: str, what: str) -> datetime:
    """RFC 3339 with Z or an offset; Kraken sends up to 9 fractional digits, truncated to the microsecond."""
    return iso_time(obj, key, what, kind="an RFC 3339 time")
