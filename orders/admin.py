"""Admin views of the trading records: read-only (the pipeline and the executors write them; nothing is added,
changed or deleted by hand). Staff may close positions and cancel orders through the executor of the record's
mode, the same services as the live page's buttons (``staff_close``, ``staff_cancel`` in :mod:`orders.services`);
what cannot be done is reported as a message naming the record and the reason."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TypeVar

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from markets.admin_numbers import EMPTY, PlainNumbersAdmin, shown
from markets.admin_numbers import number as money

from .models import Fill, Order, Position, RiskDecision
from .services import ActionRefused, orders_announce, positions_announce, staff_cancel, staff_close

R = TypeVar("R", Order, Position)

UP, DOWN = "#15803d", "#b91c1c"
PRICE, QTY = "price", "qty"  # prices and quote amounts print to the instrument's tick, quantities to its step


def signed(value: Decimal | None) -> SafeString | str:
    """Profit and loss exactly (``markets.numbers.plain``, no trailing zeros), with its sign, green or red."""
    if value is None:
        return EMPTY
    colour = UP if value > 0 else DOWN if value < 0 else "inherit"
    return format_html(
        '<span style="color:{};font-variant-numeric:tabular-nums">{}</span>',
        colour,
        ("+" if value > 0 else "") + shown(value),
    )


class ReadOnlyAdmin(PlainNumbersAdmin):
    """No add, change or delete by hand; the change page is a view."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def _act_on_each(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    records: Iterable[R],
    act: Callable[..., R],
    name: Callable[[R], str],
    verb: str,
) -> list[R]:
    """Apply a staff action to each record; what was refused, and how many were done, become admin messages."""
    now, done, refused = timezone.now(), [], []
    for record in records:
        try:
            done.append(act(record, now=now))
        except ActionRefused as exc:
            refused.append(f"{name(record)}: {exc.detail}")
    for line in refused:
        model_admin.message_user(request, line, messages.ERROR)
    if done:
        model_admin.message_user(request, f"{verb} {len(done)}", messages.SUCCESS)
    elif not refused:
        model_admin.message_user(request, "nothing selected", messages.WARNING)
    return done


@admin.register(RiskDecision)
class RiskDecisionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "mode",
        "exchange",
        "symbol",
        "interval",
        "action",
        "verdict",
        "show_qty",
        "show_price",
        "show_stop",
        "show_take_profit",
        "first_reason",
    )
    list_filter = ("mode", "approved", "rejection", "action", "exchange", "symbol", "interval", "strategy")
    search_fields = ("symbol", "strategy")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    fields = (
        "verdict",
        "reasons_list",
        "mode",
        "strategy",
        "exchange",
        "symbol",
        "interval",
        "candle_open_time",
        "action",
        "show_price",
        "show_qty",
        "show_stop",
        "show_take_profit",
        "show_equity",
        "show_available",
        "inputs_shown",
        "created_at",
    )
    readonly_fields = fields

    show_qty = money("qty", "qty", QTY)
    show_price = money("price", "price", PRICE)
    show_stop = money("stop_price", "stop", PRICE)
    show_take_profit = money("take_profit_price", "take-profit", PRICE)
    show_equity = money("equity", "equity", PRICE)
    show_available = money("available", "available", PRICE)

    @admin.display(description="verdict", ordering="approved")
    def verdict(self, obj: RiskDecision) -> SafeString:
        if obj.approved:
            return format_html('<strong style="color:{}">approved</strong>', UP)
        return format_html('<strong style="color:{}">rejected</strong>: {}', DOWN, obj.get_rejection_display())

    @admin.display(description="reason")
    def first_reason(self, obj: RiskDecision) -> str:
        return obj.reasons[0] if obj.reasons else EMPTY

    @admin.display(description="reasons")
    def reasons_list(self, obj: RiskDecision) -> SafeString | str:
        if not obj.reasons:
            return EMPTY
        return format_html(
            "<ul style='margin:0;padding-left:1.2em'>{}</ul>",
            format_html_join("", "<li>{}</li>", ((r,) for r in obj.reasons)),
        )

    @admin.display(description="inputs (parameters, filters, account figures)")
    def inputs_shown(self, obj: RiskDecision) -> SafeString:
        return format_html(
            '<pre style="margin:0">{}</pre>', json.dumps(obj.inputs, indent=2, sort_keys=True, default=str)
        )


class OrderInline(ReadOnlyInline):
    model = Order
    fk_name = "position"
    fields = (
        "client_order_id",
        "purpose",
        "side",
        "type",
        "status",
        "show_qty",
        "show_price",
        "show_avg_price",
        "show_fee",
        "reason",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    ordering = ("created_at",)

    show_qty = money("qty", "qty", QTY)
    show_price = money("stop_price", "stop / trigger", PRICE)
    show_avg_price = money("avg_price", "avg fill", PRICE)
    show_fee = money("fee", "fee", PRICE)  # in the quote asset


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = (
        "opened_at",
        "mode",
        "exchange",
        "symbol",
        "status",
        "show_qty",
        "show_entry",
        "show_stop",
        "show_take_profit",
        "show_last",
        "unrealised",
        "realised",
        "exit_reason",
        "closed_at",
    )
    list_filter = ("mode", "status", "exit_reason", "exchange", "symbol")
    search_fields = ("=entry_client_order_id", "symbol")
    date_hierarchy = "opened_at"
    ordering = ("-opened_at",)
    actions = ("close_positions",)
    inlines = (OrderInline,)
    fields = (
        "mode",
        "exchange",
        "symbol",
        "status",
        "show_qty",
        "show_entry",
        "show_stop",
        "show_take_profit",
        "show_last",
        "unrealised",
        "show_fees",
        "show_exit",
        "exit_reason",
        "realised",
        "entry_client_order_id",
        "protection",
        "decision_link",
        "opened_at",
        "closed_at",
        "updated_at",
    )
    readonly_fields = fields

    show_qty = money("qty", "qty", QTY)
    show_entry = money("entry_price", "entry", PRICE)
    show_stop = money("stop_price", "stop", PRICE)
    show_take_profit = money("take_profit_price", "take-profit", PRICE)
    show_last = money("last_price", "last", PRICE)
    show_fees = money("fees", "fees", PRICE)
    show_exit = money("exit_price", "exit", PRICE)

    @admin.display(description="unrealised PnL", ordering="unrealised_pnl")
    def unrealised(self, obj: Position) -> SafeString | str:
        return signed(obj.unrealised_pnl)

    @admin.display(description="realised PnL", ordering="realised_pnl")
    def realised(self, obj: Position) -> SafeString | str:
        return signed(obj.realised_pnl)

    @admin.display(description="risk decision")
    def decision_link(self, obj: Position) -> SafeString | str:
        return _decision_link(obj.risk_decision_id)

    @admin.action(description="Close selected positions")
    def close_positions(self, request: HttpRequest, queryset: QuerySet[Position]) -> None:
        done = _act_on_each(self, request, queryset, staff_close, str, "positions closed:")
        if done:
            positions_announce(done)


class FillInline(ReadOnlyInline):
    model = Fill
    fields = ("trade_id", "show_price", "show_qty", "show_fee", "fee_asset", "ts")
    readonly_fields = fields
    show_change_link = False

    show_price = money("price", "price", PRICE)
    show_qty = money("qty", "qty", QTY)
    show_fee = money("fee", "fee")  # in fee_asset: its own digits


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "client_order_id",
        "mode",
        "exchange",
        "symbol",
        "side",
        "type",
        "purpose",
        "status",
        "show_qty",
        "show_price",
        "show_avg_price",
        "position_pnl",
        "short_reason",
    )
    list_filter = ("mode", "status", "purpose", "side", "type", "exchange", "symbol")
    search_fields = ("=client_order_id", "symbol")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    list_select_related = ("position",)
    actions = ("cancel_orders",)
    inlines = (FillInline,)
    fields = (
        "client_order_id",
        "mode",
        "exchange",
        "symbol",
        "side",
        "type",
        "purpose",
        "status",
        "show_qty",
        "show_limit",
        "show_price",
        "show_executed",
        "show_avg_price",
        "show_fee",
        "reason",
        "exchange_order_id",
        "order_list_id",
        "position_link",
        "position_pnl",
        "decision_link",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    show_qty = money("qty", "qty", QTY)
    show_limit = money("price", "limit price", PRICE)
    show_price = money("stop_price", "stop / trigger", PRICE)
    show_executed = money("executed_qty", "executed", QTY)
    show_avg_price = money("avg_price", "avg fill", PRICE)
    show_fee = money("fee", "fee", PRICE)  # in the quote asset

    @admin.display(description="position PnL")
    def position_pnl(self, obj: Order) -> SafeString | str:
        """The PnL of the position the order opened, protects or closed (realised once closed)."""
        return signed(obj.position.pnl) if obj.position_id and obj.position else EMPTY

    @admin.display(description="reason", ordering="reason")
    def short_reason(self, obj: Order) -> str:
        return obj.reason if len(obj.reason) <= 60 else obj.reason[:59] + "…"

    @admin.display(description="position")
    def position_link(self, obj: Order) -> SafeString | str:
        if not obj.position_id:
            return EMPTY
        url = reverse("admin:orders_position_change", args=[obj.position_id])
        return format_html('<a href="{}">{}</a>', url, obj.position)

    @admin.display(description="risk decision")
    def decision_link(self, obj: Order) -> SafeString | str:
        return _decision_link(obj.risk_decision_id)

    @admin.action(description="Cancel selected orders")
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        done = _act_on_each(self, request, queryset, staff_cancel, lambda o: o.client_order_id, "orders cancelled:")
        if done:
            orders_announce(done)


@admin.register(Fill)
class FillAdmin(ReadOnlyAdmin):
    list_display = ("ts", "order_link", "symbol", "trade_id", "show_price", "show_qty", "show_fee", "fee_asset")
    list_filter = ("order__mode", "order__exchange", "order__symbol", "fee_asset")
    search_fields = ("=order__client_order_id", "=trade_id")
    date_hierarchy = "ts"
    ordering = ("-ts",)
    list_select_related = ("order",)
    fields = ("order_link", "symbol", "trade_id", "show_price", "show_qty", "show_fee", "fee_asset", "ts")
    readonly_fields = fields

    show_price = money("price", "price", PRICE)
    show_qty = money("qty", "qty", QTY)
    show_fee = money("fee", "fee")  # in fee_asset: its own digits

    @admin.display(description="symbol", ordering="order__symbol")
    def symbol(self, obj: Fill) -> str:
        return obj.order.symbol

    @admin.display(description="order", ordering="order__client_order_id")
    def order_link(self, obj: Fill) -> SafeString:
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.client_order_id)


def _decision_link(pk: object) -> SafeString | str:
    if pk is None:
        return EMPTY
    decision = RiskDecision.objects.filter(pk=pk).first()
    if decision is None:
        return EMPTY
    return format_html('<a href="{}">{}</a>', reverse("admin:orders_riskdecision_change", args=[pk]), decision)
