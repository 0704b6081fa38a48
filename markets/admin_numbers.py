"""Prices and quantities in the admin by the one printed form (:func:`markets.numbers.plain`): list columns and
read-only fields through :func:`number`, editable fields through :class:`PlainDecimalInput`; Django alone would
print every stored decimal with its 18 places (``0.010000000000000000``). The places come from the row's
instrument, read once per instrument per request (:class:`PlainNumbersAdmin` starts each request's memo)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from .numbers import plain
from .places import NONE, Places, instrument_places, places_of

EMPTY = "—"
_request = threading.local()  # the current request's memo of places, per (exchange, symbol)


def places_for(obj: Any) -> Places:
    """The places of ``obj``'s instrument: its own tick and step (an Instrument), else those of its ``exchange`` and
    ``symbol``, else of its ``order``'s (a fill); ``NONE`` when there is none."""
    if hasattr(obj, "tick_size") and hasattr(obj, "step_size"):
        return places_of(obj.tick_size, obj.step_size)
    owner = obj if isinstance(getattr(obj, "symbol", None), str) else getattr(obj, "order", None)
    exchange, symbol = getattr(owner, "exchange", None), getattr(owner, "symbol", None)
    if not isinstance(exchange, str) or not isinstance(symbol, str):
        return NONE
    return instrument_places(exchange, symbol, memo=getattr(_request, "memo", None))


def shown(value: Decimal | str | None, places: int = 0) -> str:
    """``value`` by :func:`plain`, or a dash when there is none."""
    return EMPTY if value is None else plain(value, places) or EMPTY


def number(field: str, description: str, kind: str | None = None) -> Callable[[Any, models.Model], str]:
    """A list column or read-only field showing ``field`` by :func:`plain`: ``kind="price"`` (prices and quote
    amounts) with the instrument's tick places, ``"qty"`` with its step places, none (a P&L, a ratio) with 0."""

    @admin.display(description=description, ordering=field)
    def show(_admin: Any, obj: models.Model) -> str:
        value = getattr(obj, field)
        return shown(value, places_for(obj).of(kind) if kind and value is not None else 0)

    return show


class PlainDecimalInput(forms.TextInput):
    """A decimal form field's input showing its value by :func:`plain` (``places`` of the instrument); what the
    user typed is shown back as typed."""

    places = 0

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, Decimal | int) or (isinstance(value, str) and value.strip()):
            try:
                return plain(value if not isinstance(value, str) else value.strip(), self.places)
            except (ValueError, InvalidOperation, IndexError):
                pass
        return super().format_value(value)


class PlainNumbersAdmin(admin.ModelAdmin):
    """A ModelAdmin whose decimal inputs print by :func:`plain`; ``number_kinds`` names the price and quantity
    fields of its model (``{"tick_size": "price", "step_size": "qty"}``) so that an object's form shows them with
    its instrument's places."""

    number_kinds: Mapping[str, str] = {}
    formfield_overrides = {models.DecimalField: {"widget": PlainDecimalInput}}  # noqa: RUF012 (Django's own shape)

    def get_queryset(self, request: HttpRequest) -> Any:
        _request.memo = {}  # every list and change view asks for its rows here first: one memo per request
        return super().get_queryset(request)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        found = places_for(obj) if obj is not None else NONE
        for name, field in form.base_fields.items():
            if isinstance(field.widget, PlainDecimalInput):
                field.widget.places = found.of(self.number_kinds.get(name))
        return form
