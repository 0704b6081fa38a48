"""Output shapes of the history API. Prices and quantities are decimal strings (never floats, never an
exponent); times are ISO-8601 UTC with a ``Z`` and millisecond precision."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..gap_bounds import gap_ids, gap_times
from ..numbers import plain
from ..places import NONE, Places, instrument_places, places_of


def utc_iso(t: datetime) -> str:
    """``t`` as ISO-8601 in UTC with a ``Z``, to the millisecond (what MongoDB keeps)."""
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "example": "61000.01",
        "description": "a decimal number as a string: exact, no exponent, no trailing zeros past the instrument's "
        "tick (prices and quote amounts) or step (base quantities)",
    }
)
class DecimalString(serializers.Field):
    """A Decimal printed by :func:`markets.numbers.plain`: ``kind="price"`` with the instrument's tick places
    (prices and quote amounts), ``kind="qty"`` with its step places (base quantities), no kind (a P&L, a ratio)
    with 0: the value's digits, trailing zeros dropped. The instrument is the nearest :class:`PlacesOut`'s
    (``Decimal("60244.8")`` with tick 0.01 is ``"60244.80"``; ``Decimal("1E-8")`` is ``"0.00000001"``)."""

    def __init__(self, *, kind: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)
        self.kind = kind

    def to_representation(self, value: Decimal | str) -> str:
        found = getattr(self.parent, "places", NONE) if self.kind else NONE
        return plain(value, found.of(self.kind)) or ""  # never None: DRF passes None by without calling this


class PlacesOut(serializers.Serializer):
    """A serializer whose :class:`DecimalString` fields print with the places of the object's instrument: the
    context's ``places`` when given (a view that knows the instrument); else the object's own tick and step (an
    Instrument), or those of its ``exchange`` and ``symbol`` (of its ``venue``, for a consolidated quote), read
    once per request; else the enclosing object's (an order's fills); else none (``NONE``)."""

    places: Places = NONE

    def to_representation(self, instance: Any) -> Any:
        self.places = self._places(instance)
        return super().to_representation(instance)

    def _places(self, instance: Any) -> Places:
        context = self.context
        if isinstance(context.get("places"), Places):
            return context["places"]
        target = getattr(instance, "venue", instance)
        if isinstance(target, Mapping):
            exchange, symbol = target.get("exchange"), target.get("symbol")
        elif hasattr(target, "tick_size") and hasattr(target, "step_size"):
            return places_of(target.tick_size, target.step_size)
        else:
            exchange, symbol = getattr(target, "exchange", None), getattr(target, "symbol", None)
        if isinstance(exchange, str) and isinstance(symbol, str):
            return instrument_places(exchange, symbol, memo=context.setdefault("places_memo", {}))
        parent = self.parent
        while parent is not None and not isinstance(parent, PlacesOut):
            parent = parent.parent
        return parent.places if parent is not None else NONE


@extend_schema_field({"type": "string", "format": "date-time", "example": "2026-11-24T00:00:00.000Z"})
class UtcTime(serializers.Field):
    """An aware datetime as ISO-8601 UTC with ``Z``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: datetime) -> str:
        return utc_iso(value)


class InstrumentOut(PlacesOut):
    """A venue symbol with its canonical name and the exchange's trading filters."""

    exchange = serializers.CharField()
    symbol = serializers.CharField(help_text="the venue's symbol, e.g. BTCUSDT")
    canonical = serializers.CharField(help_text="BASE-QUOTE, e.g. BTC-USDT")
    base = serializers.CharField()
    quote = serializers.CharField()
    status = serializers.CharField()
    tick_size = DecimalString(kind="price", allow_null=True)
    step_size = DecimalString(kind="qty", allow_null=True)
    min_notional = DecimalString(kind="price", allow_null=True)


class TickOut(PlacesOut):
    """One stored trade (an aggregate trade on Binance)."""

    trade_id = serializers.IntegerField()
    price = DecimalString(kind="price")
    qty = DecimalString(kind="qty")
    taker_side = serializers.CharField(help_text="buy or sell")
    ts = UtcTime(help_text="exchange time")
    received_at = UtcTime(help_text="our receive time")
    source = serializers.CharField(help_text="ws, rest or import")
    first_trade_id = serializers.IntegerField()
    last_trade_id = serializers.IntegerField()


class TickPageOut(serializers.Serializer):
    """A page of ticks in trade-id order; ``next`` is the URL of the following page, or null at the end."""

    results = TickOut(many=True)
    next = serializers.URLField(allow_null=True, help_text="the same query with from_id = last trade_id + 1")


class CandleOut(PlacesOut):
    """One OHLCV candle; ``source`` is "exchange", "trades", another exchange's name, or a "+"-joined mix
    for an aggregated interval."""

    open_time = UtcTime()
    close_time = UtcTime()
    open = DecimalString(kind="price")
    high = DecimalString(kind="price")
    low = DecimalString(kind="price")
    close = DecimalString(kind="price")
    volume = DecimalString(kind="qty")
    quote_volume = DecimalString(kind="price")
    trades = serializers.IntegerField()
    taker_buy_volume = DecimalString(kind="qty")
    taker_buy_quote_volume = DecimalString(kind="price")
    source = serializers.CharField()
    closed = serializers.BooleanField()
    synthetic = serializers.BooleanField(help_text="a flat zero-volume candle for a minute without trades")


class RangeOut(serializers.Serializer):
    """A half-open time range ``[start, end)``, from a ``(start, end)`` pair."""

    start = UtcTime()
    end = UtcTime()

    def to_representation(self, instance: tuple[datetime, datetime]) -> dict[str, str]:
        start, end = instance
        return {"start": utc_iso(start), "end": utc_iso(end)}


class SpanOut(serializers.Serializer):
    """A part of the requested range and where its candles came from."""

    start = UtcTime()
    end = UtcTime()
    source = serializers.CharField(help_text='"mongodb", "exchange" (fetched by this request), "missing" or "future"')


class PriceHistoryOut(serializers.Serializer):
    """Candles of ``[start, end)`` with their provenance (``markets.history.PriceHistory``)."""

    exchange = serializers.CharField()
    symbol = serializers.CharField()
    interval = serializers.CharField()
    start = UtcTime()
    end = UtcTime()
    complete = serializers.BooleanField(help_text="every candle of the range is stored and closed")
    missing = RangeOut(many=True, help_text="sub-ranges that could have candles but have none stored")
    spans = SpanOut(many=True)
    exchange_requests = serializers.IntegerField(help_text="requests this call sent to the exchange")
    queued = RangeOut(
        many=True,
        help_text="parts of `missing` queued for a backfill from the exchange (requests that may not fetch); "
        "ask again later",
    )
    candles = CandleOut(many=True)


class GapOut(serializers.Serializer):
    """A detected hole, one shape for both kinds: ``start``/``end`` are times, ``first_id``/``last_id`` trade ids.

    - ``kind="candles"``: the missing minutes ``[start, end)``; no ids (null).
    - ``kind="trades"``: the missing ids ``first_id..last_id``; ``start`` and ``end`` are the exchange times of the
      stored trades either side of the hole (every missing trade lies between them), null while none is stored."""

    exchange = serializers.CharField()
    symbol = serializers.CharField()
    kind = serializers.CharField(help_text="trades (a hole in trade ids) or candles (missing minutes)")
    start = serializers.SerializerMethodField(
        help_text="candles: the first missing minute; trades: the time of the stored trade before the hole"
    )
    end = serializers.SerializerMethodField(
        help_text="candles: the end of the missing range (exclusive); trades: the time of the stored trade after "
        "the hole"
    )
    first_id = serializers.SerializerMethodField(help_text="trades: the first missing trade id; null for candles")
    last_id = serializers.SerializerMethodField(help_text="trades: the last missing trade id; null for candles")
    state = serializers.CharField()
    reason = serializers.CharField()
    missing = serializers.IntegerField()
    recovered = serializers.IntegerField()
    detected_at = UtcTime()
    updated_at = UtcTime()

    @extend_schema_field(UtcTime(allow_null=True))
    def get_start(self, gap: Any) -> str | None:
        t = gap_times(gap)[0]
        return None if t is None else utc_iso(t)

    @extend_schema_field(UtcTime(allow_null=True))
    def get_end(self, gap: Any) -> str | None:
        t = gap_times(gap)[1]
        return None if t is None else utc_iso(t)

    def get_first_id(self, gap: Any) -> int | None:
        return gap_ids(gap)[0]

    def get_last_id(self, gap: Any) -> int | None:
        return gap_ids(gap)[1]


class FeedOut(serializers.Serializer):
    """The live feed of one (exchange, symbol): its state and health."""

    exchange = serializers.CharField()
    symbol = serializers.CharField()
    state = serializers.CharField(help_text="connected, down, reconnecting or paused")
    last_trade_id = serializers.IntegerField(allow_null=True)
    last_trade_at = UtcTime(allow_null=True, help_text="exchange time of the last trade received")
    lag_ms = serializers.IntegerField(allow_null=True, help_text="receive time minus exchange time of the last trade")
    reconnects = serializers.IntegerField()
    last_error = serializers.CharField(help_text="empty when there has been none")
    updated_at = UtcTime()


class VenueQuoteOut(PlacesOut):
    """One venue of a consolidated price (``markets.consolidated.VenueQuote``)."""

    exchange = serializers.CharField(source="venue.exchange")
    symbol = serializers.CharField(source="venue.symbol", help_text="the venue's symbol, e.g. XBTUSD")
    canonical = serializers.CharField(source="venue.canonical", help_text="BASE-QUOTE, e.g. BTC-USD")
    quote = serializers.CharField(source="venue.quote")
    price = DecimalString(
        kind="price", source="venue.price", allow_null=True, help_text="the last stored trade's price"
    )
    ts = UtcTime(source="venue.ts", allow_null=True, help_text="the last stored trade's exchange time")
    trade_id = serializers.IntegerField(source="venue.trade_id", allow_null=True)
    age_ms = serializers.SerializerMethodField(help_text="milliseconds from the last trade to `at`")
    deviation_bps = DecimalString(
        allow_null=True, help_text="(price - reference) / reference in basis points, to 0.01; null without a reference"
    )
    stale = serializers.BooleanField(help_text="no trade, or the last one is older than `stale_seconds`")
    outlier = serializers.BooleanField(help_text="|deviation_bps| is more than `outlier_bps`")
    used = serializers.BooleanField(help_text="neither stale nor an outlier: its price is in the median")

    def get_age_ms(self, quote: Any) -> int | None:
        return None if quote.age is None else quote.age // timedelta(milliseconds=1)


class ConsolidatedOut(PlacesOut):
    """The consolidated price of a base asset (``markets.consolidated.Consolidated``); ``price`` and ``reference``
    print with the finest tick of its venues (a median of two prices may be half a tick finer: nothing is cut)."""

    def _places(self, instance: Any) -> Places:
        memo = self.context.setdefault("places_memo", {})
        ticks = [instrument_places(q.venue.exchange, q.venue.symbol, memo).price for q in instance.venues]
        return Places(price=max(ticks, default=0))

    base = serializers.CharField()
    price = DecimalString(
        kind="price", allow_null=True, help_text="median of the fresh venues that are not outliers; null if none"
    )
    reason = serializers.CharField(allow_null=True, help_text="why `price` is null; null when there is a price")
    reference = DecimalString(
        kind="price",
        allow_null=True,
        help_text="median of the fresh venues, outliers included: what deviations are measured from",
    )
    at = UtcTime(source="now", help_text="when it was computed (server time)")
    venues_used = serializers.IntegerField(source="used", help_text="how many venues `price` is the median of")
    stale_seconds = serializers.SerializerMethodField(help_text="CONSOLIDATED_STALE_SECONDS")
    outlier_bps = DecimalString(source="config.outlier_bps", help_text="CONSOLIDATED_OUTLIER_BPS")
    venues = VenueQuoteOut(many=True, help_text="every stored instrument of the base quoted in USD, USDT or USDC")

    def get_stale_seconds(self, consolidated: Any) -> float:
        return float(consolidated.config.stale_after.total_seconds())


class ErrorOut(serializers.Serializer):
    """Every error body: ``error`` always; ``fields`` (parameter → messages) on a 400; ``detail`` otherwise."""

    error = serializers.CharField(help_text='"invalid request", "not found", "exchange unavailable", ...')
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="on a 400: each bad parameter with what is wrong and the limit",
    )
    detail = serializers.CharField(required=False)
    retry_after = serializers.IntegerField(
        required=False, help_text="on a 429 or 503: seconds to wait (also the Retry-After header)"
    )
