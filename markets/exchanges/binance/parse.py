"""Binance Spot payloads parsed into the normalized records. Pure: no client, no Django.

The live stream reuses ``parse_agg_trade`` and ``parse_trade``: prices and quantities become ``Decimal``
from Binance's strings (never float), times UTC-aware datetimes from integer milliseconds, and a
malformed payload is a ``ValueError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..base import CandleBar, InstrumentInfo, Source, TradeTick
from ..fields import aware as _aware
from ..fields import count as _int
from ..fields import decimal as _decimal
from ..fields import get as _get
from ..fields import mapping as _mapping
from ..fields import text as _text

EXCHANGE = "binance"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KLINE_FIELDS = (
    "open time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close time",
    "quote volume",
    "trades",
    "taker buy volume",
    "taker buy quote volume",
)


@dataclass(frozen=True, slots=True)
class SymbolFilters:
    """A symbol's trading rules from its exchangeInfo ``filters``; None where Binance sets no rule (the filter or
    the field absent, or zero)."""

    tick_size: Decimal | None
    step_size: Decimal | None
    min_qty: Decimal | None
    max_qty: Decimal | None
    min_notional: Decimal | None


# -- parsers ------------------------------------------------------------------------------------------------
def parse_exchange_info(payload: Any) -> list[InstrumentInfo]:
    """The symbols of an exchangeInfo answer, with tick/step size and min notional read from the filters
    (``PRICE_FILTER``, ``LOT_SIZE``, ``NOTIONAL`` or the older ``MIN_NOTIONAL``; a zero means "no rule" and
    becomes None) and every filter kept raw. Example (abridged)::

        {"timezone": "UTC", "serverTime": 1565246363776,
         "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
         "symbols": [{"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC",
                      "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.00000100",
                                   "maxPrice": "100000.00000000", "tickSize": "0.00000100"},
                                  {"filterType": "LOT_SIZE", "minQty": "0.00100000", "maxQty": "100000.00000000",
                                   "stepSize": "0.00100000"},
                                  {"filterType": "NOTIONAL", "minNotional": "10.00000000", ...}], ...}]}
    """
    symbols = _get(_mapping(payload, "exchangeInfo"), "symbols", "exchangeInfo")
    if not isinstance(symbols, list):
        raise ValueError(f"exchangeInfo field 'symbols' must be an array, got {symbols!r:.80}")
    out = []
    for entry in symbols:
        s = _mapping(entry, "exchangeInfo symbol")
        what = f"exchangeInfo symbol {s.get('symbol')!r}"
        symbol, base, quote_ = (_text(s, k, what) for k in ("symbol", "baseAsset", "quoteAsset"))
        filters = s.get("filters", [])
        if not isinstance(filters, list) or not all(isinstance(f, Mapping) and "filterType" in f for f in filters):
            raise ValueError(f"{what} field 'filters' must be an array of objects with a filterType")
        rules = parse_filters(filters, what)
        out.append(
            InstrumentInfo(
                exchange=EXCHANGE,
                symbol=symbol,
                canonical=f"{base}-{quote_}",
                base=base,
                quote=quote_,
                status=_text(s, "status", what),
                tick_size=rules.tick_size,
                step_size=rules.step_size,
                min_notional=rules.min_notional,
                filters=tuple(dict(f) for f in filters),
            )
        )
    return out


def parse_filters(filters: Iterable[Any], what: str = "symbol") -> SymbolFilters:
    """The rules in a symbol's ``filters`` (as exchangeInfo sends them, or as stored with an instrument):
    ``PRICE_FILTER``'s tickSize, ``LOT_SIZE``'s stepSize, minQty and maxQty, and ``NOTIONAL``'s (or the older
    ``MIN_NOTIONAL``'s) minNotional. Entries without a ``filterType`` (another venue's raw product) are no
    rule; a filter that lacks its tickSize, stepSize or minNotional, or a value that is not a decimal string,
    is a ValueError. Example::

        [{"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
          "tickSize": "0.01000000"},
         {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
         {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": true, ...}]
    """
    by_type = {f["filterType"]: f for f in filters if isinstance(f, Mapping) and "filterType" in f}
    price, lot = by_type.get("PRICE_FILTER"), by_type.get("LOT_SIZE")
    notional = by_type.get("NOTIONAL") or by_type.get("MIN_NOTIONAL")
    return SymbolFilters(
        tick_size=_filter_value(price, "tickSize", what),
        step_size=_filter_value(lot, "stepSize", what),
        min_qty=_filter_value(lot, "minQty", what, optional=True),
        max_qty=_filter_value(lot, "maxQty", what, optional=True),
        min_notional=_filter_value(notional, "minNotional", what),
    )


WINDOW_UNITS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


def parse_weight_rule(payload: Any) -> tuple[int, int] | None:
    """The REQUEST_WEIGHT limit and its window in seconds from an exchangeInfo answer's ``rateLimits``, or None
    when absent: ``{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}``
    is ``(6000, 60)``."""
    limits = payload.get("rateLimits") if isinstance(payload, Mapping) else None
    for r in limits if isinstance(limits, list) else ():
        if (
            isinstance(r, Mapping)
            and r.get("rateLimitType") == "REQUEST_WEIGHT"
            and r.get("interval") in WINDOW_UNITS
            and isinstance(r.get("intervalNum"), int)
            and r["intervalNum"] > 0
            and isinstance(r.get("limit"), int)
            and r["limit"] > 0
        ):
            return int(r["limit"]), WINDOW_UNITS[r["interval"]] * r["intervalNum"]
    return None


def parse_weight_limit(payload: Any) -> int | None:
    """The REQUEST_WEIGHT limit per minute from an exchangeInfo answer's ``rateLimits``, or None when absent:
    ``{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}``."""
    limits = payload.get("rateLimits") if isinstance(payload, Mapping) else None
    for r in limits if isinstance(limits, list) else ():
        if (
            isinstance(r, Mapping)
            and r.get("rateLimitType") == "REQUEST_WEIGHT"
            and r.get("interval") == "MINUTE"
            and r.get("intervalNum") == 1
            and isinstance(r.get("limit"), int)
            and r["limit"] > 0
        ):
            return int(r["limit"])
    return None


def parse_kline(row: Any, *, symbol: str, interval: str, now: datetime) -> CandleBar:
    """One row of GET /api/v3/klines; ``closed`` is whether its close time is before ``now``. Example::

        [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815",
         1499644799999, "2434.19055334", 308, "1756.87402397", "28.46694368", "0"]

    (open time, open, high, low, close, volume, close time = open + interval - 1 ms, quote volume, trades,
    taker buy volume, taker buy quote volume, unused).
    """
    if not isinstance(row, list | tuple) or len(row) < len(KLINE_FIELDS):
        raise ValueError(f"kline must be an array of 12 fields, got {row!r:.80}")
    _aware(now, "now")
    named = dict(zip(KLINE_FIELDS, row, strict=False))
    decimals = {
        k: _decimal(named, k, "kline")
        for k in (
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote volume",
            "taker buy volume",
            "taker buy quote volume",
        )
    }
    open_time, close_time = _ms_time(named, "open time", "kline"), _ms_time(named, "close time", "kline")
    if close_time < open_time:
        raise ValueError(f"kline field 'close time' ({close_time}) is before its open time ({open_time})")
    return CandleBar(
        exchange=EXCHANGE,
        symbol=symbol,
        interval=interval,
        open_time=open_time,
        close_time=close_time,
        open=decimals["open"],
        high=decimals["high"],
        low=decimals["low"],
        close=decimals["close"],
        volume=decimals["volume"],
        quote_volume=decimals["quote volume"],
        trades=_int(named, "trades", "kline"),
        taker_buy_volume=decimals["taker buy volume"],
        taker_buy_quote_volume=decimals["taker buy quote volume"],
        source="exchange",
        closed=close_time < now,
    )


def parse_agg_trade(obj: Any, *, symbol: str | None = None, received_at: datetime, source: Source) -> TradeTick:
    """One aggregate trade, from GET /api/v3/aggTrades (no symbol inside: pass ``symbol``)::

        {"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781, "T": 1498793709153,
         "m": true, "M": true}

    or from a ``<symbol>@aggTrade`` WebSocket frame (the ``data`` of a combined-stream frame)::

        {"e": "aggTrade", "E": 1672515782136, "s": "BNBBTC", "a": 12345, "p": "0.001", "q": "100", "f": 100,
         "l": 105, "T": 1672515782136, "m": true, "M": true}

    ``m`` true means the buyer was the maker, so the taker sold: ``taker_side`` "sell".
    """
    what = "aggTrade"
    obj = _mapping(obj, what)
    return _tick(
        obj,
        what,
        _symbol(obj, symbol, what),
        _int(obj, "a", what),
        received_at,
        source,
        _int(obj, "f", what),
        _int(obj, "l", what),
    )


def parse_trade(obj: Any, *, symbol: str | None = None, received_at: datetime, source: Source) -> TradeTick:
    """One ``<symbol>@trade`` WebSocket frame (the ``data`` of a combined-stream frame); the trade is its own
    first and last trade. Example from a real capture::

        {"e": "trade", "E": 1723161255343, "s": "BTCUSDT", "t": 3735683259, "p": "61837.63000000",
         "q": "0.02000000", "T": 1723161255342, "m": true, "M": true}
    """
    what = "trade"
    obj = _mapping(obj, what)
    trade_id = _int(obj, "t", what)
    return _tick(obj, what, _symbol(obj, symbol, what), trade_id, received_at, source, trade_id, trade_id)


def _tick(
    obj: Mapping[str, Any],
    what: str,
    symbol: str,
    trade_id: int,
    received_at: datetime,
    source: Source,
    first: int,
    last: int,
) -> TradeTick:
    if "e" in obj and obj["e"] != what:
        raise ValueError(f"{what} field 'e' must be {what!r}, got {obj['e']!r:.40}")
    buyer_is_maker = _get(obj, "m", what)
    if not isinstance(buyer_is_maker, bool):
        raise ValueError(f"{what} field 'm' must be true or false, got {buyer_is_maker!r:.40}")
    return TradeTick(
        exchange=EXCHANGE,
        symbol=symbol,
        trade_id=trade_id,
        price=_decimal(obj, "p", what),
        qty=_decimal(obj, "q", what),
        taker_side="sell" if buyer_is_maker else "buy",
        ts=_ms_time(obj, "T", what),
        received_at=_aware(received_at, "received_at"),
        source=Source(source),
        first_trade_id=first,
        last_trade_id=last,
    )


def _ms_time(obj: Mapping[str, Any], key: str, what: str) -> datetime:
    ms = _int(obj, key, what)
    try:
        return EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise ValueError(f"{what} field {key!r} is not a time in milliseconds: {ms}") from None


def _symbol(obj: Mapping[str, Any], given: str | None, what: str) -> str:
    if "s" not in obj:
        if not given:
            raise ValueError(f"{what} field 's' is missing and no symbol was given")
        return given
    inside = _text(obj, "s", what)
    if given and given != inside:
        raise ValueError(f"{what} field 's' is {inside!r}, not the expected {given!r}")
    return inside


def _filter_value(f: Mapping[str, Any] | None, key: str, what: str, *, optional: bool = False) -> Decimal | None:
    if f is None or (optional and key not in f):
        return None
    value = _decimal(f, key, f"{what} filter {f['filterType']}")
    return value or None
