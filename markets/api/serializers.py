"""Output shapes of the history API. Prices and quantities are decimal strings (never floats, never an
exponent); times are ISO-8601 UTC with a ``Z`` and millisecond precision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def utc_iso(t: datetime) -> str:
    """``t`` as ISO-8601 in UTC with a ``Z``, to the millisecond (what MongoDB keeps)."""
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "example": "61000.01000000",
        "description": "a decimal number as a string, no exponent",
    }
)
class DecimalString(serializers.Field):
    """A Decimal as plain positional notation: ``Decimal("1E-8")`` → ``"0.00000001"``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: Decimal) -> str:
        return format(value, "f")


@extend_schema_field({"type": "string", "format": "date-time", "example": "2026-11-24T00:00:00.000Z"})
class UtcTime(serializers.Field):
    """An aware datetime as ISO-8601 UTC with ``Z``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: datetime) -> str:
        return utc_iso(value)


class InstrumentOut(serializers.Serializer):
    """A venue symbol with its canonical name and the exchange's trading filters."""

    exchange = serializers.CharField()
    symbol = serializers.CharField(help_text="the venue's symbol, e.g. BTCUSDT")
    canonical = serializers.CharField(help_text="BASE-QUOTE, e.g. BTC-USDT")
    base = serializers.CharField()
    quote = serializers.CharField()
    status = serializers.CharField()
    tick_size = DecimalString(allow_null=True)
    step_size = DecimalString(allow_null=True)
    min_notional = DecimalString(allow_null=True)


class TickOut(serializers.Serializer):
    """One stored trade (an aggregate trade on Binance)."""

    trade_id = serializers.IntegerField()
    price = DecimalString()
    qty = DecimalString()
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


class CandleOut(serializers.Serializer):
    """One OHLCV candle; ``source`` is "exchange", "trades", another exchange's name, or a "+"-joined mix
    for an aggregated interval."""

    open_time = UtcTime()
    close_time = UtcTime()
    open = DecimalString()
    high = DecimalString()
    low = DecimalString()
    close = DecimalString()
    volume = DecimalString()
    quote_volume = DecimalString()
    trades = serializers.IntegerField()
    taker_buy_volume = DecimalString()
    taker_buy_quote_volume = DecimalString()
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
    """A detected hole: trade ids for ``kind="trades"``, epoch milliseconds for ``kind="candles"``."""

    exchange = serializers.CharField()
    symbol = serializers.CharField()
    kind = serializers.CharField()
    start = serializers.IntegerField(help_text="first missing trade id, or range start in epoch ms")
    end = serializers.IntegerField(help_text="last missing trade id, or range end in epoch ms")
    state = serializers.CharField()
    reason = serializers.CharField()
    missing = serializers.IntegerField()
    recovered = serializers.IntegerField()
    detected_at = UtcTime()
    updated_at = UtcTime()


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


class VenueQuoteOut(serializers.Serializer):
    """One venue of a consolidated price (``markets.consolidated.VenueQuote``)."""

    exchange = serializers.CharField(source="venue.exchange")
    symbol = serializers.CharField(source="venue.symbol", help_text="the venue's symbol, e.g. XBTUSD")
    canonical = serializers.CharField(source="venue.canonical", help_text="BASE-QUOTE, e.g. BTC-USD")
    quote = serializers.CharField(source="venue.quote")
    price = DecimalString(source="venue.price", allow_null=True, help_text="the last stored trade's price")
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


class ConsolidatedOut(serializers.Serializer):
    """The consolidated price of a base asset (``markets.consolidated.Consolidated``)."""

    base = serializers.CharField()
    price = DecimalString(allow_null=True, help_text="median of the fresh venues that are not outliers; null if none")
    reason = serializers.CharField(allow_null=True, help_text="why `price` is null; null when there is a price")
    reference = DecimalString(
        allow_null=True, help_text="median of the fresh venues, outliers included: what deviations are measured from"
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
