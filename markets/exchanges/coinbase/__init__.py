"""Coinbase Exchange: pure parsers of its REST and WebSocket payloads (:mod:`.parse`)."""

from .parse import (
    EXCHANGE,
    parse_candles,
    parse_cursor_headers,
    parse_error,
    parse_heartbeat,
    parse_match,
    parse_products,
    parse_time,
    parse_trades,
)

__all__ = [
    "EXCHANGE",
    "parse_candles",
    "parse_cursor_headers",
    "parse_error",
    "parse_heartbeat",
    "parse_match",
    "parse_products",
    "parse_time",
    "parse_trades",
]
