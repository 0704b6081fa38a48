"""``GET /api/v1/orders`` and ``GET /api/v1/positions``: the trading records, newest first, read-only, with the
conventions of the history API (:mod:`markets.api`): every bad input is a 400 naming the parameter (an unknown
``mode`` or ``status`` lists the known values), unknown parameters are refused, prices, quantities and PnL are
decimal strings, times ISO-8601 UTC with a ``Z``.

Staff only (:mod:`orders.access`): a staff session (Django's session cookie) gets them, anyone else a JSON 403
saying so, unless ``TRADING_DATA_PUBLIC`` is on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from markets.api.params import QueryParams, exchange_param, limit_param, symbol_param
from markets.api.serializers import DecimalString, ErrorOut, PlacesOut, UtcTime
from markets.api.views import BAD_INPUT, parse

from .access import STAFF_ONLY, TradingDataAccess
from .models import Mode, Order, Position
from .selectors import order_list, position_list

PAGE = 100
MAX_PAGE = 1000
STAFF_NOTE = "Staff only: a staff session (sign in at /admin/login/), unless the server sets `TRADING_DATA_PUBLIC`."
NOT_STAFF = OpenApiResponse(
    ErrorOut, description="not a staff session (and `TRADING_DATA_PUBLIC` is off): trading data is for staff only"
)


class KnownValue(serializers.ChoiceField):
    """One of a model's choices, case-insensitive (``filled`` is ``FILLED``, ``OPEN`` is ``open``)."""

    def to_internal_value(self, data: Any) -> Any:
        canonical = {str(c).lower(): c for c in self.choices}
        return super().to_internal_value(canonical.get(str(data).strip().lower(), data))


def known_param(name: str, values: Sequence[str], what: str) -> KnownValue:
    """An optional filter on one of ``values``; an unknown value is refused with the list of known ones."""
    known = ", ".join(values)
    return KnownValue(
        choices=list(values),
        required=False,
        help_text=f"{what}: one of {known} (case-insensitive); all when absent",
        error_messages={"invalid_choice": f'unknown {name} "{{input}}"; use one of {known}'},
    )


class RecordParams(QueryParams):
    """Filters common to orders and positions, all optional."""

    mode = known_param("mode", Mode.values, "the trading mode")
    exchange = exchange_param(required=False)
    symbol = symbol_param(required=False)
    limit = limit_param(PAGE, MAX_PAGE)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        self.check_symbol(attrs, errors)
        self.raise_if(errors)
        return attrs


class OrdersParams(RecordParams):
    """``GET /api/v1/orders``."""

    status = known_param("status", Order.Status.values, "the order's status as the exchange last reported it")


class PositionsParams(RecordParams):
    """``GET /api/v1/positions``."""

    status = known_param("status", Position.Status.values, "open or closed")


class FillOut(PlacesOut):
    """One execution of an order."""

    trade_id = serializers.CharField(help_text="the exchange's trade id (paper-1, ... on paper)")
    price = DecimalString(kind="price")
    qty = DecimalString(kind="qty")
    fee = DecimalString(help_text="in fee_asset")
    fee_asset = serializers.CharField()
    ts = UtcTime(help_text="when it filled")


class OrderOut(PlacesOut):
    """One order we placed (or tried to), as the exchange (or the paper book) last reported it."""

    id = serializers.CharField()
    client_order_id = serializers.CharField(help_text="derived from the signal: the same signal never orders twice")
    mode = serializers.CharField(help_text="paper, testnet or live")
    exchange = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.CharField(help_text="BUY or SELL")
    type = serializers.CharField(help_text="MARKET, STOP_LOSS, TAKE_PROFIT, LIMIT_MAKER, ... (Binance's names)")
    purpose = serializers.CharField(help_text="entry, stop_loss, take_profit or exit")
    status = serializers.CharField(help_text=", ".join(Order.Status.values))
    qty = DecimalString(kind="qty")
    price = DecimalString(kind="price", allow_null=True, help_text="the limit price; null for a market order")
    stop_price = DecimalString(kind="price", allow_null=True, help_text="the trigger of a stop-loss or take-profit")
    executed_qty = DecimalString(kind="qty")
    avg_price = DecimalString(kind="price", allow_null=True, help_text="average fill price; null before a fill")
    fee = DecimalString(kind="price", help_text="in the quote asset")
    reason = serializers.CharField(help_text="why it was rejected, cancelled or expired; empty otherwise")
    exchange_order_id = serializers.IntegerField(allow_null=True)
    position_id = serializers.CharField(allow_null=True, help_text="the position it opened, protects or closed")
    risk_decision_id = serializers.CharField(allow_null=True, help_text="the risk decision it carries out")
    fills = FillOut(many=True, source="fills.all")
    created_at = UtcTime()
    updated_at = UtcTime()


class PositionOut(PlacesOut):
    """A long position with its protection and its profit and loss (quote asset, every fee included)."""

    id = serializers.CharField()
    mode = serializers.CharField(help_text="paper, testnet or live")
    exchange = serializers.CharField()
    symbol = serializers.CharField()
    status = serializers.CharField(help_text="open or closed")
    qty = DecimalString(kind="qty", help_text="base quantity held")
    entry_price = DecimalString(kind="price", help_text="average fill price of the entry")
    stop_price = DecimalString(kind="price")
    take_profit_price = DecimalString(kind="price")
    last_price = DecimalString(kind="price", allow_null=True)
    fees = DecimalString(kind="price", help_text="fees paid so far, in the quote asset")
    unrealised_pnl = DecimalString(allow_null=True, help_text="at the last price, fees paid; null once closed")
    realised_pnl = DecimalString(allow_null=True, help_text="exit - entry, less every fee; null while open")
    pnl = DecimalString(allow_null=True, help_text="realised when closed, else unrealised")
    exit_price = DecimalString(kind="price", allow_null=True)
    exit_reason = serializers.CharField(help_text="stop_loss, take_profit, signal or manual; empty while open")
    entry_client_order_id = serializers.CharField(help_text="the order that opened it")
    risk_decision_id = serializers.CharField(allow_null=True)
    opened_at = UtcTime()
    closed_at = UtcTime(allow_null=True)
    updated_at = UtcTime()


class StaffView(APIView):
    """Trading data: a staff session (or anyone with ``TRADING_DATA_PUBLIC``); read-only, so no CSRF is asked."""

    authentication_classes = (SessionAuthentication,)
    permission_classes = (TradingDataAccess,)

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> None:
        """403 (a session cookie carries no ``WWW-Authenticate`` for a 401) saying who may see what, and how."""
        raise PermissionDenied(STAFF_ONLY)


class OrdersView(StaffView):
    @extend_schema(
        operation_id="orders_list",
        parameters=[OrdersParams],
        tags=["trading"],
        summary="Orders",
        description=f"Our orders (entries, their stop-loss and take-profit, exits), newest first, at most `limit` "
        f"({PAGE} by default, {MAX_PAGE} at most), each with its fills and, when it was rejected, cancelled or "
        "expired, the reason. " + STAFF_NOTE,
        responses={200: OrderOut(many=True), 400: BAD_INPUT, 403: NOT_STAFF},
    )
    def get(self, request: Request) -> Response:
        p = parse(OrdersParams, request)
        orders = order_list(
            limit=p["limit"],
            mode=p.get("mode"),
            status=p.get("status"),
            exchange=p.get("exchange"),
            symbol=p.get("symbol"),
        )
        return Response(OrderOut(orders, many=True).data)


class PositionsView(StaffView):
    @extend_schema(
        operation_id="positions_list",
        parameters=[PositionsParams],
        tags=["trading"],
        summary="Positions",
        description=f"Positions, open and closed, newest first, at most `limit` ({PAGE} by default, {MAX_PAGE} at "
        "most), with their unrealised (open) or realised (closed) profit and loss in the quote asset. " + STAFF_NOTE,
        responses={200: PositionOut(many=True), 400: BAD_INPUT, 403: NOT_STAFF},
    )
    def get(self, request: Request) -> Response:
        p = parse(PositionsParams, request)
        positions = position_list(
            limit=p["limit"],
            mode=p.get("mode"),
            status=p.get("status"),
            exchange=p.get("exchange"),
            symbol=p.get("symbol"),
        )
        return Response(PositionOut(positions, many=True).data)
