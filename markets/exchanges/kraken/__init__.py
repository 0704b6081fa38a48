"""Kraken Spot: pure parsers of its REST (:mod:`.parse`) and WebSocket v2 (:mod:`.ws`) payloads."""

from .parse import EXCHANGE, parse_asset_pairs, parse_ohlc, parse_time, parse_trades, unwrap
from .ws import WsKind, kind_of, parse_ws_ohlc, parse_ws_trade

__all__ = [
    "EXCHANGE",
    "WsKind",
    "kind_of",
    "parse_asset_pairs",
    "parse_ohlc",
    "parse_time",
    "parse_trades",
    "parse_ws_ohlc",
    "parse_ws_trade",
    "unwrap",
]
