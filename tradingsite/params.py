"""Strategy and risk parameters from a settings dict (``SIGNAL_PARAMS``, ``RISK_PARAMS``) as their frozen dataclass."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings

P = TypeVar("P")
_CONVERT: dict[str, tuple[type, str]] = {
    "Decimal": (Decimal, "a decimal"),
    "float": (float, "a number"),
    "int": (int, "a whole number"),
}


def params_from_setting(cls: type[P], name: str) -> P:
    """``cls`` built from the dict ``settings.<name>``: each value converted to its field's type (Decimal, float or
    int; an optional field's too), an empty value leaving the field's default (an optional rule off). A bad key
    or value is a ValueError naming the setting."""
    raw: dict[str, Any] = dict(getattr(settings, name))
    kinds = {f.name: str(f.type).removesuffix(" | None") for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - set(kinds))
    if unknown:
        raise ValueError(f"{name} has unknown keys {unknown}; known: {sorted(kinds)}")
    values: dict[str, object] = {}
    for key, value in raw.items():
        if str(value).strip() == "":
            continue
        convert, kind = _CONVERT[kinds[key]]
        try:
            values[key] = convert(str(value).strip())
        except (ValueError, ArithmeticError):
            raise ValueError(f"{name}[{key!r}] must be {kind}, got {value!r}") from None
    return cls(**values)
