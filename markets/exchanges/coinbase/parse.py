"""Coinbase Exchange payloads parsed into the normalized records. Pure: no client, no Django.

Prices and sizes come as strings and become ``Decimal`` from that text. Candle values are JSON numbers:
decode the body with ``json.loads(text, parse_float=Decimal)`` to keep the wire's digits; a float that
was decoded anyway is converted through its shortest ``repr`` (``Decimal(repr(x))``, the same digits as
``str(x)``), which is the wire's number exactly whenever it has at most 15 significant digits or was written
in its shortest form (trailing zeros are lost), never the float's binary expansion. Times are UTC-aware: ISO-8601
strings kept to the microsecond (extra digits truncated), candle times from integer seconds. ``side`` on the
wire is the MAKER's side, so the taker's is the other one. A malformed payload is a ``ValueError`` naming the
field. Product ids (``BTC-USD``) are already canonical names and are the venue symbol.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..base import CandleBar, InstrumentInfo, Source, TradeTick
from ..fields import aware as _aware
from ..fields import count as _int
from ..fields import decimal
from ..fields import get as _get
from ..fields import iso_time as _iso_time
from ..fields import mapping as _mapping
from ..fields import text as _text
from ..symbols import canonical

EXCHANGE = "coinbase"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GRANULARITIES = {60: "1m", 300: "5m", 900: "15m", 3600: "1h", 21600: "6h", 86400: "1d"}
CANDLE_FIELDS = ("time", "low", "high", "open", "close", "volume")
TAKER_SIDE = {"buy": "sell", "sell": "buy"}  # maker side -> taker side


# -- parsers ------------------------------------------------------------------------------------------------
def parse_products(payload: Any) -> list[InstrumentInfo]:
    """GET /products: tick size = ``quote_increment``, step size = ``base_increment``, min notional =
    ``min_market_funds`` (None when absent or zero); each product kept raw in ``filters``. Example (abridged)::

        [{"id": "BTC-USD", "base_currency": "BTC", "quote_currency": "USD", "quote_increment": "0.01",
          "base_increment": "0.00000001", "display_name": "BTC/USD", "min_market_funds": "1", "status": "online"}]
    """
    if not isinstance(payload, list):
        raise ValueError(f"products must be an array, got {payload!r:.80}")
    out = []
    for entry in payload:
        p = _mapping(entry, "product")
        what = f"product {p.get('id')!r}"
        symbol, base, quote = (_text(p, k, what) for k in ("id", "base_currency", "quote_currency"))
        name = f"{base}-{quote}"
        if canonical(EXCHANGE, symbol) != name:
            raise ValueError(f"{what} field 'id' does not name its currencies {name!r}")
        funds = _decimal(p, "min_market_funds", what) if "min_market_funds" in p else None
        out.append(
            InstrumentInfo(
                exchange=EXCHANGE,
                symbol=symbol,
                canonical=name,
                base=base,
                quote=quote,
                status=_text(p, "status", what),
                tick_size=_decimal(p, "quote_increment", what) or None,
                step_size=_decimal(p, "base_increment", what) or None,
                min_notional=funds or None,
                filters=(dict(p),),
            )
        )
    return out


def parse_time(payload: Any) -> datetime:
    """GET /time, read from the ISO string (the epoch beside it is a float):
    ``{"iso": "2020-05-12T08:00:51.504Z", "epoch": 1589270451.504}``."""
    return _iso_time(_mapping(payload, "time"), "iso", "time")


def parse_trades(rows: Any, *, symbol: str, received_at: datetime, source: Source = Source.REST) -> list[TradeTick]:
    """GET /products/{symbol}/trades, newest first on the wire, returned oldest first (by trade id)::

        [{"time": "2020-03-20T00:36:59.860Z", "trade_id": 86327327, "price": "6225.32000000",
          "size": "0.06469797", "side": "sell"}]

    ``side`` "sell" is the maker's: the taker bought, so ``taker_side`` is "buy".
    """
    if not isinstance(rows, list):
        raise ValueError(f"trades must be an array, got {rows!r:.80}")
    canonical(EXCHANGE, symbol)
    ticks = [_tick(_mapping(r, "trade"), "trade", symbol, received_at, source) for r in rows]
    return sorted(ticks, key=lambda t: t.trade_id)


def parse_match(frame: Any, *, received_at: datetime, source: Source = Source.WS) -> TradeTick:
    """One ``match`` frame of the matches channel (or the ``last_match`` sent first after subscribing)::

        {"type": "match", "trade_id": 82047307, "maker_order_id": "0f358725-...", "taker_order_id": "252b7002-...",
         "side": "sell", "size": "0.00513192", "price": "9314.78", "product_id": "BTC-USD",
         "sequence": 12038915443, "time": "2020-01-31T20:03:41.158814Z"}

    ``side`` is the maker's: here the taker bought.
    """
    f = _mapping(frame, "match")
    if f.get("type") not in ("match", "last_match"):
        raise ValueError(f"match field 'type' must be 'match' or 'last_match', got {f.get('type')!r:.40}")
    symbol = _text(f, "product_id", "match")
    canonical(EXCHANGE, symbol)
    return _tick(f, "match", symbol, received_at, source)


def parse_heartbeat(frame: Any) -> tuple[str, int, datetime]:
    """(product id, last trade id, time) of a heartbeat frame, sent every second per product; a
    ``last_trade_id`` beyond the last match seen means matches were dropped::

        {"type": "heartbeat", "sequence": 90, "last_trade_id": 20, "product_id": "BTC-USD",
         "time": "2014-11-07T08:19:28.464459Z"}
    """
    f = _mapping(frame, "heartbeat")
    if f.get("type") != "heartbeat":
        raise ValueError(f"heartbeat field 'type' must be 'heartbeat', got {f.get('type')!r:.40}")
    return _text(f, "product_id", "heartbeat"), _int(f, "last_trade_id", "heartbeat"), _iso_time(f, "time", "heartbeat")


def parse_candles(rows: Any, *, symbol: str, granularity: int, now: datetime) -> list[CandleBar]:
    """GET /products/{symbol}/candles?granularity=60, newest first on the wire, returned oldest first; a bucket
    with no trades is absent. ``closed`` is whether its close time is before ``now``. Example::

        [[1591514160, 0.02507, 0.02507, 0.02507, 0.02507, 0.02816506], [1591514100, ...]]

    (time = bucket start in seconds, low, high, open, close, volume; numbers, see the module docstring). Close
    time = open + interval - 1 ms as on Binance. Coinbase reports no quote volume, trade count or taker buy
    volumes: they are 0.
    """
    ok = isinstance(granularity, int) and not isinstance(granularity, bool)
    interval = GRANULARITIES.get(granularity) if ok else None
    if interval is None:
        known = ", ".join(map(str, GRANULARITIES))
        raise ValueError(f"granularity must be one of {known} seconds, got {granularity!r:.40}")
    if not isinstance(rows, list):
        raise ValueError(f"candles must be an array, got {rows!r:.80}")
    canonical(EXCHANGE, symbol)
    _aware(now, "now")
    bars = [_candle(r, symbol, interval, timedelta(seconds=granularity), now) for r in rows]
    return sorted(bars, key=lambda b: b.open_time)


def parse_cursor_headers(headers: Mapping[str, str]) -> tuple[int | None, int | None]:
    """(CB-BEFORE, CB-AFTER) of a paginated answer: the cursors (trade ids for trades) of its newest and oldest
    items, None when absent. Header names are matched without regard to case."""
    lower = {k.lower(): v for k, v in headers.items()}
    out: list[int | None] = []
    for name in ("CB-BEFORE", "CB-AFTER"):
        value = lower.get(name.lower())
        if value is not None and not (isinstance(value, str) and value.isascii() and value.isdigit()):
            raise ValueError(f"header {name} must be a non-negative integer, got {value!r:.40}")
        out.append(int(value) if value is not None else None)
    return out[0], out[1]


def parse_error(body: Any) -> str:
    """The message of an error answer: ``{"message": "NotFound"}`` -> "NotFound"."""
    return _text(_mapping(body, "error body"), "message", "error body")


# -- helpers ------------------------------------------------------------------------------------------------
def _tick(obj: Mapping[str, Any], what: str, symbol: str, received_at: datetime, source: Source) -> TradeTick:
    maker_side = _get(obj, "side", what)
    if maker_side not in ("buy", "sell"):
        raise ValueError(f"{what} field 'side' must be 'buy' or 'sell', got {maker_side!r:.40}")
    trade_id = _int(obj, "trade_id", what)
    return TradeTick(
        exchange=EXCHANGE,
        symbol=symbol,
        trade_id=trade_id,
        price=_decimal(obj, "price", what),
        qty=_decimal(obj, "size", what),
        taker_side=TAKER_SIDE[maker_side],
        ts=_iso_time(obj, "time", what),
        received_at=_aware(received_at, "received_at"),
        source=Source(source),
        first_trade_id=trade_id,
        last_trade_id=trade_id,
    )


def _candle(row: Any, symbol: str, interval: str, length: timedelta, now: datetime) -> CandleBar:
    if not isinstance(row, list | tuple) or len(row) != len(CANDLE_FIELDS):
        raise ValueError(f"candle must be an array of 6 fields, got {row!r:.80}")
    named = dict(zip(CANDLE_FIELDS, row, strict=True))
    v = {k: _number(named, k, "candle") for k in CANDLE_FIELDS[1:]}
    open_time = _seconds_time(named, "time", "candle")
    close_time = open_time + length - timedelta(milliseconds=1)
    return CandleBar(
        exchange=EXCHANGE,
        symbol=symbol,
        interval=interval,
        open_time=open_time,
        close_time=close_time,
        open=v["open"],
        high=v["high"],
        low=v["low"],
        close=v["close"],
        volume=v["volume"],
        quote_volume=Decimal(0),
        trades=0,
        taker_buy_volume=Decimal(0),
        taker_buy_quote_volume=Decimal(0),
        source="exchange",
        closed=close_time < now,
    )


def _seconds_time(obj: Mapping[str, Any], key: str, what: str) -> datetime:
    seconds = _int(obj, key, what)
    try:
        return EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{what} field {key!r} is not a time in seconds: {seconds}") from None


def _decimal(obj: Mapping[str, Any], key: str, what: str) -> Decimal:
    return decimal(obj, key, what)


def _number(obj: Mapping[str, Any], key: str, what: str) -> Decimal:
    """A JSON number (candle values)."""
    return decimal(obj, key, what, number=True)
