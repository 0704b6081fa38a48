"""How many decimals an instrument's prices and quantities print with (``markets.numbers``): the places of its tick
size (prices, quote amounts) and of its step size (base quantities), read from the stored instrument."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .models import Instrument
from .numbers import places, plain


@dataclass(frozen=True, slots=True)
class Places:
    """Decimals of prices and quote amounts (``price``) and of base quantities (``qty``)."""

    price: int = 0
    qty: int = 0

    def of(self, kind: str | None) -> int:
        """``kind`` "price" or "qty"; anything else (a P&L, a ratio, a count of basis points) prints with 0: the
        value's own digits, trailing zeros dropped."""
        return self.price if kind == "price" else self.qty if kind == "qty" else 0


NONE = Places()


def places_of(tick_size: Decimal | str | None, step_size: Decimal | str | None) -> Places:
    """The places of a tick size and a step size (``None``: unknown, 0)."""
    return Places(places(tick_size), places(step_size))


def instrument_places(exchange: str, symbol: str, memo: dict[tuple[str, str], Places] | None = None) -> Places:
    """The stored instrument's places (``NONE`` when it is not stored); ``memo`` keeps each answer for the caller's
    request, so a page of rows asks once per instrument."""
    key = (exchange, symbol)
    if memo is not None and key in memo:
        return memo[key]
    row = Instrument.objects.filter(exchange=exchange, symbol=symbol).values_list("tick_size", "step_size").first()
    found = places_of(*row) if row else NONE
    if memo is not None:
        memo[key] = found
    return found


Memo = dict[tuple[str, str], Places]


def priced(data: Mapping[str, Any], fields: Mapping[str, str | None], found: Places) -> dict[str, Any]:
    """``data`` (a payload for the page) with each of ``fields`` (name → "price", "qty" or None) printed by
    :func:`markets.numbers.plain` with ``found``'s places; absent and null fields are left as they are."""
    out = dict(data)
    for name, kind in fields.items():
        if out.get(name) is not None:
            out[name] = plain(out[name], found.of(kind))
    return out


def priced_rows(
    rows: Iterable[Mapping[str, Any]], fields: Mapping[str, str | None], memo: Memo
) -> list[dict[str, Any]]:
    """Payloads of any instruments (positions, orders, last prices), each printed with its own ``exchange`` and
    ``symbol``'s places; ``memo`` keeps the places already read. May read the database: call it off an event loop
    unless :func:`known` says it will not."""
    return [priced(r, fields, instrument_places(str(r.get("exchange")), str(r.get("symbol")), memo=memo)) for r in rows]


def known(rows: Iterable[Mapping[str, Any]], memo: Memo) -> bool:
    """Whether every row's instrument is in ``memo`` already (then :func:`priced_rows` reads nothing)."""
    return all((r.get("exchange"), r.get("symbol")) in memo for r in rows)
