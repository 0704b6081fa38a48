"""Kraken Spot payloads (REST and WebSocket v2) parsed into the normalized records. Pure: no client, no Django.

REST answers are the envelope ``{"error": [...], "result": ...}``: :func:`unwrap` turns Kraken's error
strings into the adapters' errors. Prices and volumes are strings on REST and become ``Decimal`` from that
text. The REST trade time and every WebSocket v2 value are JSON numbers: decode the body with
``json.loads(text, parse_float=Decimal)`` to keep the wire's digits; a float decoded anyway is converted
through its shortest ``repr`` (``Decimal(repr(x))``, the same digits as ``str(x)``), which is the wire's
number exactly whenever it has at most 15 significant digits or was written in its shortest form (as every
trade time of the recorded capture is; trailing zeros are lost), never the float's binary expansion.
Times are UTC-aware and truncated (never rounded) to the microsecond, from the float-seconds text on REST and
from RFC 3339 strings with up to 9 fractional digits on WebSocket v2.

The venue symbol of every record is the pair's altname (``XBTUSD``, as AssetPairs names it), whether the
answer said ``XXBTZUSD`` (REST result key) or ``BTC/USD`` (WebSocket v2); see :mod:`..symbols`. ``b``/``s``
and ``buy``/``sell`` are the taker's side. A malformed payload is a ``ValueError`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ..base import CandleBar, InstrumentInfo, Source, TradeTick
from ..errors import BadRequest, ExchangeError, ExchangeUnavailable, RateLimited
from ..fields import aware as _aware
from ..fields import count as _int
from ..fields import decimal as _decimal
from ..fields import get as _get
from ..fields import mapping as _mapping
from ..fields import text as _text
from ..symbols import asset, canonical, venue_symbol

EXCHANGE = "kraken"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INTERVALS = {1: "1m", 5: "5m", 15: "15m", 30: "30m", 60: "1h", 240: "4h", 1440: "1d", 10080: "1w", 21600: "15d"}
TRADE_FIELDS = ("price", "volume", "time", "side", "order type", "misc", "trade id")
OHLC_FIELDS = ("time", "open", "high", "low", "close", "vwap", "volume", "count")
TAKER_SIDE = {"b": "buy", "s": "sell"}
RATE_LIMIT_ERRORS = ("EAPI:Rate limit exceeded", "EGeneral:Too many requests", "EGeneral:Temporary lockout")


# -- REST -----------------------------------------------------------------------------------------------------
def unwrap(payload: Any, what: str = "answer") -> Any:
    """The ``result`` of a REST answer. Error strings (severity E) raise: rate limits as :class:`RateLimited`,
    ``EService:*``/``EGeneral:Internal error`` as :class:`ExchangeUnavailable`, anything else (such as
    ``{"error": ["EQuery:Unknown asset pair"]}``) as :class:`BadRequest` with the strings in ``msg``.
    Warnings (severity W) do not stop a result."""
    p = _mapping(payload, what)
    errors = _get(p, "error", what)
    if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
        raise ValueError(f"{what} field 'error' must be an array of strings, got {errors!r:.80}")
    if fatal := [e for e in errors if not e.startswith("W")]:
        raise _error(fatal)
    return _get(p, "result", what)


def parse_asset_pairs(payload: Any) -> list[InstrumentInfo]:
    """GET /0/public/AssetPairs: the symbol is the altname, the canonical name comes from the base/quote asset
    codes, tick size from ``tick_size`` (else 10^-pair_decimals), step size 10^-lot_decimals, min notional
    ``costmin``; each entry is kept raw in ``filters`` (``ordermin``, ``costmin``...) with its result ``key``::

        {"error": [], "result": {"XXBTZUSD": {"altname": "XBTUSD", "wsname": "XBT/USD", "base": "XXBT",
         "quote": "ZUSD", "pair_decimals": 1, "lot_decimals": 8, "ordermin": "0.0001", "costmin": "0.5",
         "tick_size": "0.1", "status": "online", ...}}}
    """
    result = _mapping(unwrap(payload, "AssetPairs"), "AssetPairs result")
    out = []
    for key, entry in result.items():
        e, what = _mapping(entry, f"AssetPairs {key!r}"), f"AssetPairs {key!r}"
        base, quote = (asset(EXCHANGE, _text(e, k, what)) for k in ("base", "quote"))
        costmin = _decimal(e, "costmin", what) if "costmin" in e else None
        tick = _decimal(e, "tick_size", what) if "tick_size" in e else _power(e, "pair_decimals", what)
        out.append(
            InstrumentInfo(
                exchange=EXCHANGE,
                symbol=_text(e, "altname", what),
                canonical=f"{base}-{quote}",
                base=base,
                quote=quote,
                status=_text(e, "status", what),
                tick_size=tick or None,
                step_size=_power(e, "lot_decimals", what),
                min_notional=costmin or None,
                filters=(dict(e, key=key),),
            )
        )
    return out


def parse_time(payload: Any) -> datetime:
    """GET /0/public/Time: ``{"error": [], "result": {"unixtime": 1591502873, "rfc1123": "..."}}``."""
    return EPOCH + timedelta(seconds=_int(_mapping(unwrap(payload, "Time"), "Time result"), "unixtime", "Time"))


def parse_trades(
    payload: Any, *, received_at: datetime, source: Source = Source.REST, symbol: str | None = None
) -> tuple[list[TradeTick], int]:
    """GET /0/public/Trades, oldest first: the ticks and ``last``, the nanosecond cursor to send as ``since``::

        {"error": [], "result": {"XXBTZUSD": [["30243.40000", "0.34507674", 1688669597.8277369, "b", "m", "",
         61044952]], "last": "1688671969993150842"}}

    (price, volume, time in float seconds, taker side b/s, market/limit, misc, trade id). ``symbol`` is the
    altname to record; by default it is derived from the result key.
    """
    key, rows, last = _pair_rows(payload, "Trades")
    if not isinstance(last, str) or not last.isascii() or not last.isdigit():
        raise ValueError(f"Trades field 'last' must be a nanosecond string, got {last!r:.40}")
    name = symbol or _venue(key)
    return [_rest_tick(r, name, received_at, source) for r in rows], int(last)


def parse_ohlc(payload: Any, *, interval: int, symbol: str | None = None) -> tuple[list[CandleBar], int]:
    """GET /0/public/OHLC?interval=1 (minutes), oldest first: the bars and ``last`` (seconds, the next
    ``since``). The last row is the still-open bar (``closed`` False). A minute without trades is a flat bar
    with count 0 (vwap "0.0"), kept as Kraken sends it, like Binance's. Example::

        {"error": [], "result": {"XETHXXBT": [[1591475640, "0.02500", "0.02500", "0.02500", "0.02500",
         "0.02500", "9.12201000", 5]], "last": 1591517580}}

    (time, open, high, low, close, vwap, volume, count). Kraken reports no quote volume (only a rounded vwap)
    nor taker buy volumes: they are 0. ``symbol`` is as for :func:`parse_trades`.
    """
    name = _interval(interval, "OHLC interval")
    key, rows, last = _pair_rows(payload, "OHLC")
    if isinstance(last, bool) or not isinstance(last, int):
        raise ValueError(f"OHLC field 'last' must be an integer, got {last!r:.40}")
    symbol = symbol or _venue(key)
    bars = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(OHLC_FIELDS):
            raise ValueError(f"OHLC row must be an array of 8 fields, got {row!r:.80}")
        r = dict(zip(OHLC_FIELDS, row, strict=True))
        _decimal(r, "vwap", "OHLC row")  # checked, not kept
        start = EPOCH + timedelta(seconds=_int(r, "time", "OHLC row"))
        v = {k: _decimal(r, k, "OHLC row") for k in ("open", "high", "low", "close", "volume")}
        bars.append(_bar(symbol, name, start, interval, v, _int(r, "count", "OHLC row"), i < len(rows) - 1))
    return bars, last


# -- helpers --------------------------------------------------------------------------------------------------
def _error(errors: list[str]) -> ExchangeError:
    message = "; ".join(errors)
    if any(e.startswith(RATE_LIMIT_ERRORS) for e in errors):
        return RateLimited(EXCHANGE, f"rate limited us: {message}")
    if any(e.startswith(("EService:", "EGeneral:Internal error")) for e in errors):
        return ExchangeUnavailable(EXCHANGE, f"unavailable: {message}")
    return BadRequest(EXCHANGE, f"rejected the request: {message}", msg=message)


def _pair_rows(payload: Any, what: str) -> tuple[str, list[Any], Any]:
    result = _mapping(unwrap(payload, what), f"{what} result")
    pairs = [k for k in result if k != "last"]
    if len(pairs) != 1:
        raise ValueError(f"{what} result must hold one pair besides 'last', got {pairs!r:.80}")
    rows = result[pairs[0]]
    if not isinstance(rows, list):
        raise ValueError(f"{what} field {pairs[0]!r} must be an array, got {rows!r:.80}")
    return pairs[0], rows, _get(result, "last", what)


def _rest_tick(row: Any, symbol: str, received_at: datetime, source: Source) -> TradeTick:
    if not isinstance(row, list) or len(row) != len(TRADE_FIELDS):
        raise ValueError(f"Trades row must be an array of 7 fields, got {row!r:.80}")
    r = dict(zip(TRADE_FIELDS, row, strict=True))
    for key, allowed in (("side", ("b", "s")), ("order type", ("m", "l"))):
        if r[key] not in allowed:
            raise ValueError(f"Trades row field {key!r} must be {' or '.join(map(repr, allowed))}, got {r[key]!r:.40}")
    if not isinstance(r["misc"], str):
        raise ValueError(f"Trades row field 'misc' must be a string, got {r['misc']!r:.40}")
    price, qty, ts = _decimal(r, "price", "Trades row"), _decimal(r, "volume", "Trades row"), _seconds_time(r)
    trade_id, side = _int(r, "trade id", "Trades row"), TAKER_SIDE[r["side"]]
    return _tick(symbol, trade_id, price, qty, side, ts, received_at, source)


def _tick(
    symbol: str,
    trade_id: int,
    price: Decimal,
    qty: Decimal,
    side: str,
    ts: datetime,
    received_at: datetime,
    source: Source,
) -> TradeTick:
    return TradeTick(
        exchange=EXCHANGE,
        symbol=symbol,
        trade_id=trade_id,
        price=price,
        qty=qty,
        taker_side=side,
        ts=ts,
        received_at=_aware(received_at, "received_at"),
        source=Source(source),
        first_trade_id=trade_id,
        last_trade_id=trade_id,
    )


def _bar(
    symbol: str, name: str, start: datetime, minutes: int, v: dict[str, Decimal], trades: int, closed: bool
) -> CandleBar:
    zero = Decimal(0)
    return CandleBar(
        exchange=EXCHANGE,
        symbol=symbol,
        interval=name,
        open_time=start,
        close_time=start + timedelta(minutes=minutes, milliseconds=-1),
        **v,  # open, high, low, close, volume
        quote_volume=zero,
        trades=trades,
        taker_buy_volume=zero,
        taker_buy_quote_volume=zero,
        source="exchange",
        closed=closed,
    )


def _venue(pair: str) -> str:
    """The altname of a pair however Kraken wrote it: "XXBTZUSD", "XBTUSD", "BTC/USD" -> "XBTUSD"."""
    return venue_symbol(EXCHANGE, canonical(EXCHANGE, pair), form="rest")


def _interval(minutes: Any, what: str) -> str:
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes not in INTERVALS:
        raise ValueError(f"{what} must be one of {', '.join(map(str, INTERVALS))} minutes, got {minutes!r:.40}")
    return INTERVALS[minutes]


def _power(obj: Mapping[str, Any], key: str, what: str) -> Decimal:
    """10^-n for a count of decimals: ``"lot_decimals": 8`` -> Decimal("1E-8")."""
    return Decimal(1).scaleb(-_int(obj, key, what))


def _seconds_time(row: Mapping[str, Any]) -> datetime:
    """A REST trade's float seconds, truncated to the microsecond in Decimal: 1762795433.9717445 -> .971744."""
    seconds = _decimal(row, "time", "Trades row", number=True)
    try:
        return EPOCH + timedelta(microseconds=int(seconds.scaleb(6).to_integral_value(ROUND_DOWN)))
    except OverflowError:
        raise ValueError(f"Trades row field 'time' is not a time in seconds: {seconds}") from None
