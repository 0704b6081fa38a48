"""Admin views of market data: ticks are read-only (they are the exchange's record, not ours to edit); an
instrument is added by exchange and symbol only, as the exchange lists it, through the same service as ``manage.py
instruments add`` (``markets.listing``); actions remove instruments (not streamed, data kept) and stream them
again."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from . import selectors
from .admin_numbers import EMPTY, PlainNumbersAdmin, number, places_for, shown
from .exchanges.base import InstrumentInfo
from .gap_bounds import gap_ids, gap_times
from .listing import InstrumentRefused, instruments_add, instruments_remove, instruments_stream, instruments_verify
from .models import Candle, Feed, Gap, Instrument, Tick
from .times import iso
from .venues import KNOWN_EXCHANGES


class InstrumentAddForm(forms.ModelForm):
    """Exchange and symbol; the rest (canonical name, base, quote, status, filters) is the exchange's own data,
    asked for when the form is checked. An unknown exchange, a symbol it does not list, or an exchange that does
    not answer is an error on the form, and nothing is stored. A removed instrument may be added again: it is
    streamed again, with its stored data."""

    exchange = forms.ChoiceField(
        choices=[(e, e) for e in KNOWN_EXCHANGES],
        error_messages={"invalid_choice": f"%(value)s is not a known exchange; known: {', '.join(KNOWN_EXCHANGES)}"},
    )
    symbol = forms.CharField(max_length=32, help_text="the exchange's own symbol: BTCUSDT, BTC-USD, XBTUSD")

    class Meta:
        model = Instrument
        fields = ("exchange", "symbol")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.info: InstrumentInfo | None = None

    def clean_symbol(self) -> str:
        return self.cleaned_data["symbol"].strip().upper()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        exchange, symbol = data.get("exchange"), data.get("symbol")
        if not exchange or not symbol:
            return data
        try:
            (self.info,) = instruments_verify(exchange=exchange, symbols=[symbol])
        except InstrumentRefused as exc:
            raise forms.ValidationError({exc.field: str(exc)} if exc.field else str(exc)) from exc
        data["symbol"] = self.info.symbol
        removed = Instrument.objects.filter(exchange=exchange, symbol=self.info.symbol, streamed=False).first()
        if removed is not None:  # not a duplicate: the stored record is streamed again (see save_model)
            self.instance = removed
        return data


@admin.register(Instrument)
class InstrumentAdmin(PlainNumbersAdmin):
    """The instrument list shows each last price, kept live over ``/ws/prices/`` (``admin_prices.js``). Adding
    takes an exchange and a symbol only (:class:`InstrumentAddForm`); a stored instrument's exchange and symbol
    cannot be changed (add the other one instead)."""

    list_display = (
        "exchange",
        "symbol",
        "last_price",
        "canonical",
        "status",
        "streamed",
        "show_tick_size",
        "show_step_size",
        "show_min_notional",
    )
    list_filter = ("exchange", "streamed", "status", "quote")
    search_fields = ("symbol", "canonical")
    actions = ("remove_instruments", "stream_again")
    number_kinds = {"tick_size": "price", "step_size": "qty", "min_notional": "price"}  # noqa: RUF012

    show_tick_size = number("tick_size", "tick size", "price")
    show_step_size = number("step_size", "step size", "qty")
    show_min_notional = number("min_notional", "min notional", "price")

    class Media:
        js = ("markets/admin_prices.js",)

    def get_form(self, request: HttpRequest, obj: Instrument | None = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = InstrumentAddForm
            kwargs["fields"] = InstrumentAddForm.Meta.fields
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Instrument | None = None) -> Any:
        return InstrumentAddForm.Meta.fields if obj is None else super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Instrument | None = None) -> Any:
        return ("exchange", "symbol") if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: Instrument, form: forms.ModelForm, change: bool) -> None:
        info = getattr(form, "info", None)
        if change or info is None:
            super().save_model(request, obj, form, change)
            return
        instruments_stream(instruments=[info])  # the exchange's data and filters, streamed: as `instruments add`
        stored = Instrument.objects.get(exchange=info.exchange, symbol=info.symbol)
        obj.pk = stored.pk
        obj.refresh_from_db()

    @admin.action(description="Remove: stop streaming (stored trades and candles are kept)")
    def remove_instruments(self, request: HttpRequest, queryset: QuerySet[Instrument]) -> None:
        for exchange, symbols in _by_exchange(queryset).items():
            removed = instruments_remove(exchange=exchange, symbols=symbols)
            _report(self, request, exchange, "removed", removed.removed, removed.already, "already removed")

    @admin.action(description="Stream again (the exchange's data is asked for anew)")
    def stream_again(self, request: HttpRequest, queryset: QuerySet[Instrument]) -> None:
        for exchange, symbols in _by_exchange(queryset).items():
            try:
                added = instruments_add(exchange=exchange, symbols=symbols)
            except InstrumentRefused as exc:
                self.message_user(request, f"{exchange}: {exc}", messages.ERROR)
                continue
            _report(self, request, exchange, "streamed again", added.again, added.already, "already streamed")
            if added.unknown:
                self.message_user(
                    request,
                    f"{exchange}: {', '.join(added.unknown)} no longer listed; left as they were",
                    messages.ERROR,
                )

    @admin.display(description="last price (live)")
    def last_price(self, obj: Instrument) -> str:
        last = selectors.recent_ticks(exchange=obj.exchange, symbol=obj.symbol, limit=1)
        return format_html(
            '<span class="live-price" data-instrument="{}:{}" data-testid="live-price">{}</span>',
            obj.exchange,
            obj.symbol,
            shown(last[0].price, places_for(obj).price) if last else EMPTY,
        )


def _by_exchange(queryset: QuerySet[Instrument]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for exchange, symbol in queryset.values_list("exchange", "symbol"):
        out[exchange].append(symbol)
    return out


def _report(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    exchange: str,
    did: str,
    done: tuple[str, ...],
    before: tuple[str, ...],
    was: str,
) -> None:
    parts = [f"{len(done)} {did}" + (f" ({', '.join(done)})" if done else "")]
    if before:
        parts.append(f"{len(before)} {was} ({', '.join(before)})")
    model_admin.message_user(request, f"{exchange}: {'; '.join(parts)}", messages.SUCCESS)


@admin.register(Tick)
class TickAdmin(PlainNumbersAdmin):
    list_display = ("exchange", "symbol", "trade_id", "show_price", "show_qty", "taker_side", "ts", "source")
    list_filter = ("exchange", "symbol", "source", "taker_side")
    search_fields = ("=trade_id",)
    date_hierarchy = "ts"
    ordering = ("-ts",)
    show_full_result_count = False  # counting millions of ticks on every page view is wasted work
    fields = (
        "exchange",
        "symbol",
        "trade_id",
        "show_price",
        "show_qty",
        "taker_side",
        "ts",
        "received_at",
        "source",
        "first_trade_id",
        "last_trade_id",
    )
    readonly_fields = fields

    show_price = number("price", "price", "price")
    show_qty = number("qty", "qty", "qty")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Tick | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Tick | None = None) -> bool:
        return False


@admin.register(Candle)
class CandleAdmin(PlainNumbersAdmin):
    list_display = (
        "exchange",
        "symbol",
        "interval",
        "open_time",
        "show_open",
        "show_high",
        "show_low",
        "show_close",
        "show_volume",
        "source",
        "closed",
        "synthetic",
    )
    list_filter = ("exchange", "symbol", "interval", "source", "closed", "synthetic")
    date_hierarchy = "open_time"
    number_kinds = {  # noqa: RUF012
        **dict.fromkeys(("open", "high", "low", "close", "quote_volume", "taker_buy_quote_volume"), "price"),
        **dict.fromkeys(("volume", "taker_buy_volume"), "qty"),
    }

    show_open = number("open", "open", "price")
    show_high = number("high", "high", "price")
    show_low = number("low", "low", "price")
    show_close = number("close", "close", "price")
    show_volume = number("volume", "volume", "qty")


@admin.register(Gap)
class GapAdmin(admin.ModelAdmin):
    """Gap bounds as times with the ids beside them (``markets.gap_bounds``): a candle gap's minutes; a trade gap's
    missing ids and the times of the stored trades either side of them."""

    list_display = (
        "exchange",
        "symbol",
        "kind",
        "first_id",
        "last_id",
        "start_time",
        "end_time",
        "state",
        "missing",
        "recovered",
        "detected_at",
    )
    list_filter = ("exchange", "symbol", "kind", "state")
    fields = (
        "exchange",
        "symbol",
        "kind",
        "first_id",
        "last_id",
        "start_time",
        "end_time",
        "state",
        "reason",
        "missing",
        "recovered",
        "detected_at",
        "updated_at",
    )
    readonly_fields = tuple(f for f in fields if f not in ("state", "reason"))

    @admin.display(description="first id")
    def first_id(self, gap: Gap) -> int | str:
        first = gap_ids(gap)[0]
        return EMPTY if first is None else first

    @admin.display(description="last id")
    def last_id(self, gap: Gap) -> int | str:
        last = gap_ids(gap)[1]
        return EMPTY if last is None else last

    @admin.display(description="start (UTC)")
    def start_time(self, gap: Gap) -> str:
        return _iso(gap_times(gap)[0])

    @admin.display(description="end (UTC)")
    def end_time(self, gap: Gap) -> str:
        return _iso(gap_times(gap)[1])


def _iso(t: datetime | None) -> str:
    return EMPTY if t is None else iso(t)


@admin.register(Feed)
class FeedAdmin(admin.ModelAdmin):
    list_display = ("exchange", "symbol", "state", "last_trade_id", "last_trade_at", "lag_ms", "reconnects")
    list_filter = ("exchange", "state")
