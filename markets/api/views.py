"""The history API's views: parse the query with a ``params`` serializer, call one selector or service,
shape the answer with a ``serializers`` class. Candles and ticks come as output rows from ``markets.reads`` and are
answered by ``fast.py`` (orjson, or CSV streamed); their serializers remain the schema. Errors are shaped by
``errors.exception_handler``."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from .. import selectors
from ..exchanges.errors import BadRequest
from ..exchanges.retry import RetryPolicy
from ..history import PriceHistory, get_price_history
from ..history_queue import history_read_or_queue
from ..reads import CANDLE_FIELDS, TICK_FIELDS
from . import fast
from .params import CandlesParams, ConsolidatedParams, FeedsParams, GapsParams, InstrumentsParams, TicksParams
from .serializers import (
    ConsolidatedOut,
    ErrorOut,
    FeedOut,
    GapOut,
    InstrumentOut,
    PriceHistoryOut,
    TickPageOut,
)

# A web request does not sit out long rate-limit waits: a short policy turns them into a prompt 503.
API_RETRY = RetryPolicy(attempts=2, max_wait=5.0)
log = logging.getLogger(__name__)

BAD_INPUT = OpenApiResponse(
    ErrorOut,
    description="a parameter is bad: `fields` names each one and says why",
    examples=[
        OpenApiExample(
            "bad start",
            value={
                "error": "invalid request",
                "fields": {
                    "start": ["must be before end (start=2026-11-24T01:00:00.000Z, end=2026-11-24T00:00:00.000Z)"]
                },
            },
        ),
    ],
)
EXCHANGE_DOWN = OpenApiResponse(ErrorOut, description="the exchange failed or answered unusably")
RATE_LIMITED = OpenApiResponse(
    ErrorOut, description="the exchange is rate limiting us; `Retry-After` says when to try again"
)


def parse(params: type[Serializer], request: Request) -> dict[str, Any]:
    """The validated query parameters, or a ValidationError (→ 400 naming each bad field)."""
    serializer = params(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class PublicView(APIView):
    """Market data is public and read-only. The session is read (staff fetch missing history from the exchange,
    and every client is throttled by who it is: ``throttles.py``); no CSRF on these reads."""

    authentication_classes = (SessionAuthentication,)
    permission_classes = (AllowAny,)


JSON = "application/json"
CSV_TICKS = 1_000_000  # ticks in one CSV answer without `limit`; `Link: <next>` carries on from there


class CsvView(PublicView):
    """An endpoint that also answers CSV (``?format=csv`` or ``Accept: text/csv``, ``fast.py``). Its errors stay
    the JSON bodies of ``errors.py``, whatever was asked for."""

    renderer_classes = (JSONRenderer, BrowsableAPIRenderer, fast.CsvRenderer)

    def handle_exception(self, exc: Exception) -> Response:
        if fast.wants_csv(self.request):
            self.request.accepted_renderer, self.request.accepted_media_type = JSONRenderer(), JSON
        return super().handle_exception(exc)


def csv_out(description: str) -> OpenApiResponse:
    """The ``text/csv`` answer of a CSV endpoint, described."""
    return OpenApiResponse(OpenApiTypes.STR, description=description)


class InstrumentsView(PublicView):
    @extend_schema(
        operation_id="instruments_list",
        parameters=[InstrumentsParams],
        tags=["market data"],
        summary="Stored instruments",
        responses={200: InstrumentOut(many=True), 400: BAD_INPUT},
    )
    def get(self, request: Request) -> Response:
        p = parse(InstrumentsParams, request)
        return Response(InstrumentOut(selectors.instrument_list(exchange=p.get("exchange")), many=True).data)


class CandlesView(CsvView):
    @extend_schema(
        operation_id="candles_get",
        parameters=[CandlesParams],
        tags=["market data"],
        summary="Price history",
        description="Candles of [start, end) from MongoDB. With fetch=true (the default) what is missing is "
        "fetched from the exchange, stored and returned for a staff session; for anyone else it is queued for a "
        "backfill (each UTC day once, `queued` lists the parts) and the answer is what MongoDB has now, "
        "`complete: false`. `spans` says where each part came from, `complete` whether every candle is there. "
        "When the exchange refuses the symbol's candles (it does not list it: delisted, or the instrument was "
        "stored from another deployment of the venue), the answer is what MongoDB has, `missing` the rest: an "
        "instrument without stored candles has an empty history, not an error.\n\n"
        "CSV: `?format=csv` (or `Accept: text/csv`) answers the candles alone as text/csv, streamed: a header row "
        f"({', '.join(CANDLE_FIELDS)}), times ISO-8601 UTC, numbers as in JSON, booleans true/false; `X-Complete` "
        "says `complete`. Errors are JSON.",
        responses={
            (200, JSON): OpenApiResponse(PriceHistoryOut, description="JSON: the candles with their provenance"),
            (200, fast.CSV): csv_out("JSON: the candles with their provenance; CSV: the candles alone, one a line"),
            (400, JSON): BAD_INPUT,
            (502, JSON): EXCHANGE_DOWN,
            (503, JSON): RATE_LIMITED,
        },
    )
    def get(self, request: Request) -> HttpResponseBase:
        p = parse(CandlesParams, request)
        args = (p["symbol"], p["start"], p["end"], p["interval"], p["exchange"])
        if request.user.is_staff:  # only staff may make this request spend the exchange's budget
            history = _fetched_or_stored(*args, fetch=p["fetch"])
        else:
            history = history_read_or_queue(*args, queue=p["fetch"], shaped=True)
        if fast.wants_csv(request):
            name = f"{history.exchange}-{history.symbol}-{history.interval}-{fast.filename_time(history.start)}.csv"
            complete = {"X-Complete": str(history.complete).lower()}
            return fast.csv_response(request, history.rows, CANDLE_FIELDS, name, complete)
        return fast.json_answer(request, fast.history_body(history))


def _fetched_or_stored(
    symbol: str, start: datetime, end: datetime, interval: str, exchange: str, *, fetch: bool
) -> PriceHistory:
    """``get_price_history`` fetching what is missing; when the exchange refuses that (a 4xx: it does not list the
    symbol), what is stored. An exchange that fails or cannot be reached is still an error (502/503)."""
    try:
        return get_price_history(symbol, start, end, interval, exchange, fetch=fetch, policy=API_RETRY, shaped=True)
    except BadRequest as exc:
        log.warning("%s %s: the exchange refused its candles (%s); answering the stored ones", exchange, symbol, exc)
        return get_price_history(symbol, start, end, interval, exchange, fetch=False, shaped=True)


class TicksView(CsvView):
    @extend_schema(
        operation_id="ticks_list",
        parameters=[TicksParams],
        tags=["market data"],
        summary="Stored ticks",
        description="Ticks in trade-id order, a page at a time: follow `next` (the same query with "
        "from_id = last trade id + 1) until it is null.\n\n"
        "CSV: `?format=csv` (or `Accept: text/csv`) answers text/csv, streamed: a header row "
        f"({', '.join(TICK_FIELDS)}), times ISO-8601 UTC, numbers as in JSON. Without `limit` a CSV answer holds "
        f"every tick of the bounds up to {CSV_TICKS:,}; with `limit`, that many. When more ticks follow, the "
        '`Link` header (`<url>; rel="next"`) is the URL of the rest, as `next` is in JSON. Errors are JSON.',
        responses={
            (200, JSON): OpenApiResponse(TickPageOut, description="JSON: a page of ticks and `next`"),
            (200, fast.CSV): csv_out(
                "JSON: a page of ticks and `next`; CSV: the ticks, one a line, `Link` to the rest"
            ),
            (400, JSON): BAD_INPUT,
        },
    )
    def get(self, request: Request) -> HttpResponseBase:
        p = parse(TicksParams, request)
        csv = fast.wants_csv(request)
        page = selectors.tick_rows(
            exchange=p["exchange"],
            symbol=p["symbol"],
            limit=p["limit"] if not csv or "limit" in request.query_params else CSV_TICKS,
            from_id=p.get("from_id"),
            to_id=p.get("to_id"),
            start=p.get("start"),
            end=p.get("end"),
            stream=csv,
        )
        url = None
        if page.next_from_id is not None:
            url = replace_query_param(request.build_absolute_uri(), "from_id", page.next_from_id)
        if csv:
            first = fast.filename_time(p["start"]) if p.get("start") else p.get("from_id", "first")
            name = f"{p['exchange']}-{p['symbol']}-ticks-{first}.csv"
            link = {"Link": f'<{url}>; rel="next"'} if url else {}
            return fast.csv_response(request, page.rows, TICK_FIELDS, name, link)
        return fast.json_answer(request, {"results": page.rows, "next": url})


class GapsView(PublicView):
    @extend_schema(
        operation_id="gaps_list",
        parameters=[GapsParams],
        tags=["market data"],
        summary="Detected gaps",
        description="Gaps newest first, at most `limit` (500).",
        responses={200: GapOut(many=True), 400: BAD_INPUT},
    )
    def get(self, request: Request) -> Response:
        p = parse(GapsParams, request)
        gaps = selectors.gap_list(
            exchange=p.get("exchange"),
            symbol=p.get("symbol"),
            state=p.get("state"),
            kind=p.get("kind"),
            limit=p["limit"],
        )
        return Response(GapOut(gaps, many=True).data)


class FeedsView(PublicView):
    @extend_schema(
        operation_id="feeds_list",
        parameters=[FeedsParams],
        tags=["market data"],
        summary="Live feeds",
        description="Every live feed's record (state, last trade, lag, reconnects, last error), by exchange and "
        "symbol.",
        responses={200: FeedOut(many=True), 400: BAD_INPUT},
    )
    def get(self, request: Request) -> Response:
        p = parse(FeedsParams, request)
        return Response(FeedOut(selectors.feed_list(exchange=p.get("exchange")), many=True).data)


class ConsolidatedView(PublicView):
    @extend_schema(
        operation_id="consolidated_get",
        parameters=[ConsolidatedParams],
        tags=["market data"],
        summary="Consolidated price",
        description="The median of the last trade prices of every stored instrument of `base` quoted in USD, USDT "
        "or USDC, on any exchange. A venue whose last trade is older than CONSOLIDATED_STALE_SECONDS (60) is "
        "`stale`; `reference` is the median of the fresh venues, and one more than CONSOLIDATED_OUTLIER_BPS (50) "
        "from it is an `outlier`. `price` is the median of the fresh venues that are not outliers, or null with "
        "a `reason` when there is none. A base no stored instrument has is a 404.",
        responses={
            200: ConsolidatedOut,
            400: BAD_INPUT,
            404: OpenApiResponse(ErrorOut, description="no stored instrument has this base asset"),
        },
    )
    def get(self, request: Request) -> Response:
        p = parse(ConsolidatedParams, request)
        consolidated = selectors.consolidated_price(base=p["base"])
        if consolidated is None:
            raise NotFound(f"no stored instrument has base {p['base']}; see /api/v1/instruments")
        return Response(ConsolidatedOut(consolidated).data)
