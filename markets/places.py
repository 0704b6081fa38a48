"""How many decimals an instrument's prices and quantities print with (``markets.numbers``): the places of its tick
size (prices, quote amounts) and of its step size (base quantities), read from the stored instrument."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .models import Instrument
from .numbers import places


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
