"""Admin view of the stored signals: read-only (the strategy writes them; a recomputation replaces them). Confidence
and net vote print by ``markets.numbers.plain`` (Django would show their 18 stored places)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from markets.admin_numbers import number

from .models import Signal


@admin.register(Signal)
class SignalAdmin(admin.ModelAdmin):
    list_display = (
        "candle_open_time",
        "exchange",
        "symbol",
        "interval",
        "decision",
        "show_confidence",
        "strategy",
        "version",
        "updated_at",
    )
    list_filter = ("decision", "exchange", "interval", "strategy", "version")
    search_fields = ("symbol", "strategy", "=decision")
    date_hierarchy = "candle_open_time"
    ordering = ("-candle_open_time",)
    show_full_result_count = False  # one row per candle adds up; counting them on every page view is wasted work
    fields = (
        "strategy",
        "version",
        "exchange",
        "symbol",
        "interval",
        "candle_open_time",
        "decision",
        "show_confidence",
        "show_net",
        "reasons",
        "votes",
        "indicators",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    show_confidence = number("confidence", "confidence")  # ratios: their own digits, no trailing zeros
    show_net = number("net", "net")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Signal | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Signal | None = None) -> bool:
        return False
