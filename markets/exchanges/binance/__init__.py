"""Binance Spot: pure parsers of its payloads (:mod:`.parse`, :mod:`.reports`), its REST market data
(:mod:`.rest`) and its signed trading API (:mod:`.client`)."""

from .parse import EXCHANGE, parse_agg_trade, parse_exchange_info, parse_kline, parse_trade, parse_weight_limit
from .rest import CAPABILITIES, BinanceRest

__all__ = [
    "CAPABILITIES",
    "EXCHANGE",
    "BinanceRest",
    "parse_agg_trade",
    "parse_exchange_info",
    "parse_kline",
    "parse_trade",
    "parse_weight_limit",
]
