"""One way to print a price or a quantity, for the API, the admin and the page. Pure.

The rule: the exact value in positional notation (never an exponent), without trailing zeros past the
instrument's tick (prices) or step (quantities). A value on the tick shows exactly the tick's places
(``60244.8`` with tick ``0.01`` is ``"60244.80"``; ``60383.70000000`` is ``"60383.70"``); a value finer than the
tick (an average, a P&L) keeps its significant digits and drops only its trailing zeros
(``-1.99361411020000000000`` is ``"-1.9936141102"``). Without a tick or step, zeros are dropped down to the
integer. Nothing is rounded: printing never changes a value.
"""

from __future__ import annotations

from decimal import Decimal


def places(increment: Decimal | str | None) -> int:
    """The decimal places of a tick or step size: ``0.01000000`` → 2, ``1.00000000`` → 0, ``None`` → 0."""
    if increment is None:
        return 0
    d = Decimal(str(increment))
    if not d.is_finite() or d <= 0:
        return 0
    return max(0, -d.normalize().as_tuple().exponent)


def plain(value: Decimal | str | int | None, places: int = 0) -> str | None:
    """``value`` printed by the rule above with at least ``places`` decimals; ``None`` stays ``None``.

    Accepts a Decimal, an int or a decimal string (such as ``str(bson.Decimal128)``), so hot paths can skip
    building a Decimal."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if "E" in text or "e" in text or not text[-1:].isdigit():
        d = Decimal(text)
        if not d.is_finite():
            raise ValueError(f"{text!r} is not a finite number")
        text = format(d, "f")
    dot = text.find(".")
    if dot < 0:
        return text + "." + "0" * places if places else text
    decimals = len(text) - dot - 1
    keep = len(text.rstrip("0")) - dot - 1  # decimals up to the last significant digit
    if keep >= places:
        return text[: dot + 1 + keep] if keep else text[:dot]
    if decimals >= places:
        return text[: dot + 1 + places] if places else text[:dot]
    return text + "0" * (places - decimals)
