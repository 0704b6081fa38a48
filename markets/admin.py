"""Admin views of market data: ticks are read-only (they are the exchange's record, not ours to edit)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from . import selectors
from .models import Candle, Feed, Gap, Instrument, Tick


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    """The instrument list shows each last price, kept live over ``/ws/prices/`` (``admin_prices.js``)."""

    list_display = ("exchange", "symbol", "last_price", "canonical", "status", "tick_size", "step_size", "min_notional")
    list_filter = ("exchange", "status", "quote")
    search_fields = ("symbol", "canonical")

    class Media:
        js = ("markets/admin_prices.js",)

    @admin.display(description="last price (live)")
    def last_price(self, obj: Instrument) -> str:
        last = selectors.recent_ticks(exchange=obj.exchange, symbol=obj.symbol, limit=1)
        return format_html(
            '<span class="live-price" data-instrument="{}:{}" data-testid="live-price">{}</span>',
            obj.exchange,
            obj.symbol,
            last[0].price if last else "—",
        )


@admin.register(Tick)
class TickAdmin(admin.ModelAdmin):
    list_display = ("exchange", "symbol", "trade_id", "price", "qty", "taker_side", "ts", "source")
    list_filter = ("exchange", "symbol", "source", "taker_side")
    search_fields = ("=trade_id",)
    date_hierarchy = "ts"
    ordering = ("-ts",)
    show_full_result_count = False  # counting millions of ticks on every page view is wasted work

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Tick | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Tick | None = None) -> bool:
        return False


@admin.register(Candle)
class CandleAdmin(admin.ModelAdmin):
    list_display = (
        "exchange",
        "symbol",
        "interval",
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "source",
        "closed",
        "synthetic",
    )
    list_filter = ("exchange", "symbol", "interval", "source", "closed", "synthetic")
    date_hierarchy = "open_time"


@admin.register(Gap)
class GapAdmin(admin.ModelAdmin):
    list_display = ("exchange", "symbol", "kind", "start", "end", "state", "missing", "recovered", "detected_at")
    list_filter = ("exchange", "symbol", "kind", "state")


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = ("exchange", "symbol", "state", "last_trade_id", "last_trade_at", "lag_ms", "reconnects")
    list_filter = ("exchange", "state")
