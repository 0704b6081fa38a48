"""Binance Spot: pure parsers of its payloads (:mod:`.parse`) and its REST market data (:mod:`.rest`)."""

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
