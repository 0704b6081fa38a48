"""``GET /api/v1/signals``: the strategy's stored decisions, a page at a time, with the conventions of the history
API (:mod:`markets.api`): every bad input is a 400 naming the field, unknown parameters are refused, prices and
confidences are decimal strings, times ISO-8601 UTC with a ``Z``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.http.response import HttpResponseBase
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from markets.api.fast import json_answer
from markets.api.params import TIME_HELP, QueryParams, TimeParam, exchange_param, limit_param, symbol_param
from markets.api.serializers import DecimalString, UtcTime
from markets.api.views import BAD_INPUT, PublicView, parse
from markets.documents import from_ms, to_ms
from markets.intervals import INTERVALS

from . import selectors
from .models import Signal
from .reads import signal_rows

SIGNALS_PAGE = 500
MAX_SIGNALS_PAGE = 5000
DECISIONS = tuple(Signal.Decision.values)
DEFAULT_DECISIONS = "BUY,SELL"
_CURSOR = re.compile(r"(?P<ms>[0-9]{1,15})\.(?P<interval>[0-9a-z]{1,4})\.(?P<strategy>[A-Za-z0-9_.-]{1,32})")


class DecisionsParam(serializers.CharField):
    """A comma-separated set of decisions. Present but empty is refused (DRF would read it as absent and
    silently answer the default)."""

    def get_value(self, dictionary: Mapping[str, Any]) -> Any:
        return dictionary.get(self.field_name, empty)


class SignalsParams(QueryParams):
    """``GET /api/v1/signals``: one instrument's signals, optionally one interval, a time range and decisions."""

    exchange = exchange_param(required=True)
    symbol = symbol_param(required=True)
    interval = serializers.ChoiceField(
        choices=list(INTERVALS),
        required=False,
        help_text=f"one of {', '.join(INTERVALS)}; every interval when absent",
        error_messages={"invalid_choice": f'unknown interval "{{input}}"; use one of {", ".join(INTERVALS)}'},
    )
    start = TimeParam(required=False, help_text="candle open time from (inclusive). " + TIME_HELP)
    end = TimeParam(required=False, help_text="candle open time to (exclusive). " + TIME_HELP)
    decision = DecisionsParam(
        default=DEFAULT_DECISIONS,
        max_length=32,
        help_text=f"comma-separated, any of {', '.join(DECISIONS)} (case-insensitive; default {DEFAULT_DECISIONS}: "
        "the signals; HOLD rows explain why a candle did not signal)",
        error_messages={"blank": f"give one or more of {', '.join(DECISIONS)}, comma-separated"},
    )
    limit = limit_param(SIGNALS_PAGE, MAX_SIGNALS_PAGE)
    cursor = serializers.CharField(
        required=False, max_length=64, help_text="where the page starts: copied from a previous page's `next`"
    )

    def validate_decision(self, value: str) -> list[str]:
        picked = [v.strip().upper() for v in value.split(",")]
        bad = [v for v in picked if v not in DECISIONS]
        if bad:
            named = ", ".join(repr(b) for b in bad)
            known = ", ".join(DECISIONS)
            raise serializers.ValidationError(f"unknown decision {named}; use any of {known}, comma-separated")
        return sorted(set(picked), key=DECISIONS.index)

    def validate_cursor(self, value: str) -> selectors.Cursor:
        m = _CURSOR.fullmatch(value)
        if m is None or m["interval"] not in INTERVALS:
            raise serializers.ValidationError("not a cursor: copy it from a previous page's `next`")
        return selectors.Cursor(from_ms(int(m["ms"])), m["interval"], m["strategy"])

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        self.check_symbol(attrs, errors)
        self.check_order(attrs, errors)
        self.raise_if(errors)
        return attrs


def cursor_text(c: selectors.Cursor) -> str:
    """A cursor as the ``cursor`` parameter: ``<candle open time, epoch ms>.<interval>.<strategy>``."""
    return f"{to_ms(c.candle_open_time)}.{c.interval}.{c.strategy}"


class VoteOut(serializers.Serializer):
    """One rule's vote: a signed weight (+ buy, - sell) and what it saw."""

    rule = serializers.CharField(help_text="ma_cross, rsi, bollinger or macd_cross")
    weight = serializers.CharField(help_text="signed decimal string, e.g. 0.30 or -0.20")
    reason = serializers.CharField()


class SignalOut(serializers.Serializer):
    """The strategy's decision on one closed candle, with the indicator values and reasons behind it."""

    strategy = serializers.CharField(help_text="e.g. ta-vote")
    version = serializers.IntegerField()
    exchange = serializers.CharField()
    symbol = serializers.CharField()
    interval = serializers.CharField()
    candle_open_time = UtcTime()
    decision = serializers.CharField(help_text="BUY, SELL or HOLD")
    confidence = DecimalString(help_text="|net vote|, from 0 to 1; acted on at 0.30 or more")
    net = DecimalString(help_text="signed sum of the votes (+ buy, - sell)")
    indicators = serializers.DictField(
        child=serializers.FloatField(allow_null=True), help_text="the candle's indicator values; null: not defined yet"
    )
    votes = VoteOut(many=True)
    reasons = serializers.ListField(child=serializers.CharField())
    created_at = UtcTime(help_text="first evaluated")
    updated_at = UtcTime(help_text="last evaluated (a backfill may have changed the candle)")


class SignalPageOut(serializers.Serializer):
    """A page of signals by candle time; ``next`` is the URL of the following page, or null at the end."""

    results = SignalOut(many=True)
    next = serializers.URLField(allow_null=True, help_text="the same query with `cursor` set")


class SignalsView(PublicView):
    @extend_schema(
        operation_id="signals_list",
        parameters=[SignalsParams],
        tags=["signals"],
        summary="Stored signals",
        description="The strategy's decisions on closed candles of one instrument, oldest first (by candle open "
        "time, then interval and strategy), BUY and SELL unless `decision` asks for HOLD too; a page at a time: "
        "follow `next` until it is null.",
        responses={200: SignalPageOut, 400: BAD_INPUT},
    )
    def get(self, request: Request) -> HttpResponseBase:
        p = parse(SignalsParams, request)
        page = signal_rows(
            exchange=p["exchange"],
            symbol=p["symbol"],
            limit=p["limit"],
            interval=p.get("interval"),
            start=p.get("start"),
            end=p.get("end"),
            decisions=p["decision"],
            after=p.get("cursor"),
        )
        url = None
        if page.next is not None:
            url = replace_query_param(request.build_absolute_uri(), "cursor", cursor_text(page.next))
        return json_answer(request, {"results": page.rows, "next": url})
