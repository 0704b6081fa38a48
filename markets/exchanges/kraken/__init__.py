"""Kraken Spot: pure parsers of its REST and WebSocket v2 payloads (:mod:`.parse`)."""

from .parse import (
    EXCHANGE,
    WsKind,
    kind_of,
    parse_asset_pairs,
    parse_ohlc,
    parse_time,
    parse_trades,
    parse_ws_ohlc,
    parse_ws_trade,
    unwrap,
)

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
