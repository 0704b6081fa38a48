"""The domain records of market data: what every exchange adapter produces and every layer above reads.

Pure: no Django. Prices and quantities are ``Decimal``, times UTC-aware (ARCHITECTURE §5). Adapters build these at
the boundary (:mod:`markets.exchanges`), storage turns them into documents and back (:mod:`markets.documents`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Source(StrEnum):
    """Where a stored tick came from."""

    WS = "ws"
    REST = "rest"
    IMPORT = "import"


@dataclass(frozen=True, slots=True)
class TradeTick:
    """One exchange trade (an aggregate trade on Binance): ``trade_id`` is unique per (exchange, symbol).

    ``taker_side`` is "buy" or "sell"; ``ts`` is the exchange's time and ``received_at`` ours, both UTC.
    ``first_trade_id``/``last_trade_id`` are the raw trades an aggregate covers (equal to ``trade_id``
    for a plain trade).
    """

    exchange: str
    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    taker_side: str
    ts: datetime
    received_at: datetime
    source: Source
    first_trade_id: int
    last_trade_id: int


@dataclass(frozen=True, slots=True)
class CandleBar:
    """One OHLCV interval of one (exchange, symbol); times UTC; ``source`` as on the Candle model."""

    exchange: str
    symbol: str
    interval: str
    open_time: datetime
    close_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal
    source: str
    closed: bool = True
    synthetic: bool = False


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """A venue symbol with its canonical ``BASE-QUOTE`` name and trading filters (raw filters kept)."""

    exchange: str
    symbol: str
    canonical: str
    base: str
    quote: str
    status: str
    tick_size: Decimal | None = None
    step_size: Decimal | None = None
    min_notional: Decimal | None = None
    filters: tuple[dict[str, Any], ...] = ()
