"""Kraken's documented payload examples (the reference, section 6) as text, the clock the parser tests receive
them at, and the JSON decoding they go through (floats as Decimal, as the adapter decodes).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)

# the reference's examples (section 6)
ASSET_PAIRS_TEXT = (
    '{"error":[],"result":{"XXBTZUSD":{"altname":"XBTUSD","wsname":"XBT/USD","aclass_base":"currency",'
    '"base":"XXBT","aclass_quote":"currency","quote":"ZUSD","lot":"unit","pair_decimals":1,"lot_decimals":8,'
    '"lot_multiplier":1,"leverage_buy":[2,3,4,5],"leverage_sell":[2,3,4,5],"fees":[[0,0.26],[50000,0.24]],'
    '"fees_maker":[[0,0.16],[50000,0.14]],"fee_volume_currency":"ZUSD","margin_call":80,"margin_stop":40,'
    '"ordermin":"0.0001","costmin":"0.5","tick_size":"0.1","status":"online"}}}'
)
OHLC_TEXT = (
    '{"error":[],"result":{"XETHXXBT":[[1591475640,"0.02500","0.02500","0.02500","0.02500","0.02500",'
    '"9.12201000",5]],"last":1591517580}}'
)
TRADES_TEXT = (
    '{"error":[],"result":{"XXBTZUSD":[["30243.40000","0.34507674",1688669597.8277369,"b","m","",61044952],'
    '["30243.30000","0.00376960",1688669598.2804112,"s","l","",61044953]],"last":"1688671969993150842"}}'
)
WS_TRADE_TEXT = (
    '{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell","price":0.5117,"qty":40.0,'
    '"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}'
)
WS_OHLC_TEXT = (
    '{"channel":"ohlc","type":"snapshot","timestamp":"2023-10-04T16:26:01.806315597Z","data":[{"symbol":"ALGO/USD",'
    '"open":0.09875,"high":0.09875,"low":0.09875,"close":0.09875,"trades":1,"volume":201.86015,"vwap":0.09875,'
    '"interval_begin":"2023-10-04T15:25:00.000000000Z","interval":5,"timestamp":"2023-10-04T15:30:00.000000Z"}]}'
)


def decimal_json(text: str) -> Any:
    """``text`` decoded with its floats as Decimal."""
    return json.loads(text, parse_float=Decimal)
