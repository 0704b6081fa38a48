"""Query parameters of the history API: every input rule lives here, and each rule's message states its limit.

- ``exchange`` is one of ``KNOWN_EXCHANGES``; ``symbol`` is a stored instrument of that exchange. Symbols
  are upper-cased before the look-up (``btcusdt`` is ``BTCUSDT``); a canonical name such as ``BTC-USDT``
  is refused with a hint naming the venue symbol.
- Times are read by ``markets.times.parse_time``, the commands' grammar: ISO-8601 (``2026-11-24T00:00:00Z``,
  any offset; a time without an offset is taken as UTC), epoch milliseconds (digits only), ``now`` or
  ``<n>m|h|d ago``, ``now`` read once per request. Accepted from 2009-01-01T00:00:00Z to 366 days after now.
- ``base`` is one canonical asset (``BTC``, upper-cased; Kraken's ``XBT`` is ``BTC``), not a pair.
- Unknown parameters are refused (a misspelt ``inteval`` must not silently mean the default); ``format``
  (DRF's renderer switch) is always allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import selectors
from ..exchanges.symbols import KRAKEN_ALIASES
from ..intervals import INTERVALS, MAX_CANDLES, MAX_SPAN, count
from ..models import Gap
from ..times import EARLIEST, iso, parse_time
from ..venues import KNOWN_EXCHANGES
from .serializers import utc_iso

MAX_AHEAD = timedelta(days=366)  # an end a little in the future is fine (today's candles); years ahead is a typo
TICKS_PAGE = 1000
MAX_TICKS_PAGE = 5000
MAX_GAPS = 500
MAX_ID = 2**63 - 1  # trade ids are stored as BSON int64
GAP_KINDS = ("trades", "candles")  # kinds the stream and the history service record
ALWAYS_ALLOWED = frozenset({"format"})

TIME_HELP = (
    "ISO-8601 (2026-11-24T00:00:00Z, or with an offset such as +01:00, written %2B01:00 in a URL; a time "
    "without an offset is UTC), epoch milliseconds (digits only), now, or <n>m|h|d ago (90m ago, 6h ago, 7d ago; "
    "now is read once per request, so start=2h ago&end=now is exactly two hours); from "
    f"{iso(EARLIEST)} to {MAX_AHEAD.days} days after now."
)


def clock() -> datetime:
    """The time a request's ``now`` and ``ago`` are read from (tests pin it)."""
    return datetime.now(UTC)


@extend_schema_field({"type": "string", "example": "2026-11-24T00:00:00Z", "description": TIME_HELP})
class TimeParam(serializers.Field):
    """A point in time by :func:`markets.times.parse_time` (the commands' grammar), returned as an aware UTC
    datetime. ``now`` is read once per request: the parameter serializer's context keeps it (``context["now"]``
    may be given; else :func:`clock` is read at the first time parameter)."""

    default_error_messages: ClassVar[dict[str, str]] = {
        "required": "required: " + TIME_HELP,
        "null": "required: " + TIME_HELP,
    }

    def to_internal_value(self, data: object) -> datetime:
        text = str(data).strip()
        if not text:
            self.fail("required")
        context = self.context  # the root serializer's: one per request
        if "now" not in context:
            context["now"] = clock()
        now = context["now"]
        try:
            return parse_time(text, now=now, ahead=MAX_AHEAD)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from None

    def to_representation(self, value: datetime) -> str:
        return utc_iso(value)


def exchange_param(*, required: bool) -> serializers.ChoiceField:
    """The ``exchange`` parameter: one of KNOWN_EXCHANGES; optional ones filter, required ones default."""
    known = ", ".join(KNOWN_EXCHANGES)
    kwargs: dict[str, Any] = {"default": KNOWN_EXCHANGES[0]} if required else {"required": False}
    return serializers.ChoiceField(
        choices=KNOWN_EXCHANGES,
        **kwargs,
        help_text=f"one of {known}" + (f" (default {KNOWN_EXCHANGES[0]})" if required else "; all when absent"),
        error_messages={"invalid_choice": f'unknown exchange "{{input}}"; known: {known}'},
    )


def symbol_param(*, required: bool) -> serializers.CharField:
    """The ``symbol`` parameter: a venue symbol (upper-cased), checked against stored instruments."""
    return serializers.CharField(
        required=required,
        max_length=32,
        validators=[
            RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9./_-]*$", "not a symbol: letters and digits such as BTCUSDT")
        ],
        help_text="the venue symbol of a stored instrument, e.g. BTCUSDT (case-insensitive; see /api/v1/instruments)",
        error_messages={
            "required": "required: the venue symbol of a stored instrument, e.g. BTCUSDT",
            "blank": "required: the venue symbol of a stored instrument, e.g. BTCUSDT",
            "max_length": "at most {max_length} characters",
        },
    )


def id_param(what: str) -> serializers.IntegerField:
    """A trade id bound: a non-negative integer that fits int64."""
    msg = f"must be a trade id: an integer from 0 to {MAX_ID}"
    return serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_ID,
        help_text=f"{what} (0..{MAX_ID})",
        error_messages={"invalid": msg, "min_value": msg, "max_value": msg, "max_string_length": msg},
    )


def limit_param(default: int, maximum: int) -> serializers.IntegerField:
    """A page size from 1 to ``maximum``."""
    msg = f"must be an integer from 1 to {maximum}"
    return serializers.IntegerField(
        default=default,
        min_value=1,
        max_value=maximum,
        help_text=f"1..{maximum} (default {default})",
        error_messages={"invalid": msg, "min_value": msg, "max_value": msg, "max_string_length": msg},
    )


class QueryParams(serializers.Serializer):
    """Base of the parameter serializers: refuses parameters the endpoint does not define, and collects
    cross-field errors so that one answer names every bad field it can."""

    def to_internal_value(self, data: Mapping[str, Any]) -> dict[str, Any]:
        accepted = ", ".join(self.fields)
        errors: dict[str, Any] = {
            name: [f"unknown parameter; this endpoint accepts {accepted}"]
            for name in sorted(set(data) - set(self.fields) - ALWAYS_ALLOWED)
        }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**exc.detail, **errors}) from exc
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate_symbol(self, value: str) -> str:
        return value.upper()

    def check_symbol(self, attrs: dict[str, Any], errors: dict[str, list[str]]) -> None:
        """Name ``symbol`` in ``errors`` unless it is a stored instrument of ``attrs["exchange"]``."""
        symbol, exchange = attrs.get("symbol"), attrs.get("exchange")
        if symbol is None or selectors.instrument_exists(exchange=exchange, symbol=symbol):
            return
        where = exchange or "any exchange"
        message = f"{symbol} is not a stored instrument of {where} (see /api/v1/instruments"
        message += f"?exchange={exchange})" if exchange else ")"
        venue = selectors.instrument_symbol_of(exchange=exchange, canonical=symbol)
        if venue:
            message += f"; {symbol} is a canonical name: use symbol={venue}"
        errors.setdefault("symbol", []).append(message)

    @staticmethod
    def check_order(attrs: dict[str, Any], errors: dict[str, list[str]]) -> None:
        """``start`` must be before ``end`` when both are given."""
        start, end = attrs.get("start"), attrs.get("end")
        if start is not None and end is not None and start >= end:
            errors.setdefault("start", []).append(f"must be before end (start={utc_iso(start)}, end={utc_iso(end)})")

    @staticmethod
    def raise_if(errors: dict[str, list[str]]) -> None:
        if errors:
            raise serializers.ValidationError(errors)


class InstrumentsParams(QueryParams):
    """``GET /api/v1/instruments``."""

    exchange = exchange_param(required=False)


class CandlesParams(QueryParams):
    """``GET /api/v1/candles``: one history request, at most MAX_SPAN wide and MAX_CANDLES candles."""

    exchange = exchange_param(required=True)
    symbol = symbol_param(required=True)
    interval = serializers.ChoiceField(
        choices=list(INTERVALS),
        default="1m",
        help_text=f"one of {', '.join(INTERVALS)} (default 1m)",
        error_messages={"invalid_choice": f'unknown interval "{{input}}"; use one of {", ".join(INTERVALS)}'},
    )
    start = TimeParam(help_text="first candle open time (inclusive). " + TIME_HELP)
    end = TimeParam(
        help_text=f"end of the range (exclusive); end - start at most {MAX_SPAN.days} days and at "
        f"most {MAX_CANDLES} candles of the interval. " + TIME_HELP
    )
    fetch = serializers.BooleanField(
        default=True,
        help_text="fetch ranges missing from MongoDB from the exchange (default true; staff only: for anyone else "
        "they are queued for a backfill); false answers from MongoDB only",
        error_messages={"invalid": 'must be a boolean: true or false (also 1/0, yes/no, on/off), not "{input}"'},
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        self.check_symbol(attrs, errors)
        self.check_order(attrs, errors)
        start, end, interval = attrs["start"], attrs["end"], attrs["interval"]
        if start < end:
            if end - start > MAX_SPAN:
                errors.setdefault("end", []).append(
                    f"the range {utc_iso(start)}..{utc_iso(end)} covers {_days(end - start)}; "
                    f"at most {MAX_SPAN.days} days per request"
                )
            elif (n := count(start, end, interval)) > MAX_CANDLES:
                errors.setdefault("end", []).append(
                    f"the range holds {n} {interval} candles; at most {MAX_CANDLES} per request "
                    f"(shorten the range or use a wider interval)"
                )
        self.raise_if(errors)
        return attrs


class TicksParams(QueryParams):
    """``GET /api/v1/ticks``: a page of ticks in trade-id order."""

    exchange = exchange_param(required=True)
    symbol = symbol_param(required=True)
    from_id = id_param("first trade id (inclusive); the cursor of `next`")
    to_id = id_param("last trade id (inclusive)")
    start = TimeParam(required=False, help_text="exchange time from (inclusive). " + TIME_HELP)
    end = TimeParam(required=False, help_text="exchange time to (exclusive). " + TIME_HELP)
    limit = limit_param(TICKS_PAGE, MAX_TICKS_PAGE)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        self.check_symbol(attrs, errors)
        self.check_order(attrs, errors)
        from_id, to_id = attrs.get("from_id"), attrs.get("to_id")
        if from_id is not None and to_id is not None and from_id > to_id:
            errors.setdefault("from_id", []).append(f"must be at most to_id (from_id={from_id}, to_id={to_id})")
        self.raise_if(errors)
        return attrs


class GapsParams(QueryParams):
    """``GET /api/v1/gaps``: filters, all optional."""

    exchange = exchange_param(required=False)
    symbol = symbol_param(required=False)
    state = serializers.ChoiceField(
        choices=Gap.State.values,
        required=False,
        help_text=f"one of {', '.join(Gap.State.values)}",
        error_messages={"invalid_choice": f'unknown state "{{input}}"; use one of {", ".join(Gap.State.values)}'},
    )
    kind = serializers.ChoiceField(
        choices=GAP_KINDS,
        required=False,
        help_text=f"one of {', '.join(GAP_KINDS)}",
        error_messages={"invalid_choice": f'unknown kind "{{input}}"; use one of {", ".join(GAP_KINDS)}'},
    )
    limit = limit_param(MAX_GAPS, MAX_GAPS)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        self.check_symbol(attrs, errors)
        self.raise_if(errors)
        return attrs


class FeedsParams(QueryParams):
    """``GET /api/v1/feeds``: every live feed's record, optionally one exchange's."""

    exchange = exchange_param(required=False)


_PAIR = re.compile(r"[A-Z0-9.]+[-/][A-Z0-9.]+")
_PAIR_SPLIT = re.compile(r"[-/]")
_BASE_HELP = "a canonical base asset such as BTC or ETH (case-insensitive; see `base` in /api/v1/instruments)"


class ConsolidatedParams(QueryParams):
    """``GET /api/v1/consolidated``: one canonical base asset."""

    base = serializers.CharField(
        max_length=16,
        # A pair passes here so that validate_base can name its base in the message.
        validators=[
            RegexValidator(r"^[A-Za-z0-9.]+([-/][A-Za-z0-9.]+)?$", "not an asset: letters and digits such as BTC")
        ],
        help_text=_BASE_HELP,
        error_messages={
            "required": "required: " + _BASE_HELP,
            "blank": "required: " + _BASE_HELP,
            "max_length": "at most {max_length} characters",
        },
    )

    def validate_base(self, value: str) -> str:
        value = value.upper()
        if _PAIR.fullmatch(value):
            raise serializers.ValidationError(
                f"{value} is a pair; base is one asset (base={_PAIR_SPLIT.split(value)[0]} for this one)"
            )
        return KRAKEN_ALIASES[value] if value in ("XBT", "XDG") else value  # Kraken's names of BTC and DOGE


def _days(d: timedelta) -> str:
    return f"{d / timedelta(days=1):.2f} days"
