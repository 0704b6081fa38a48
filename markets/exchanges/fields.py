"""Reading fields of decoded exchange payloads, the same way for every venue. Pure: no client, no Django.

Every reader takes the object, the key and ``what`` (the payload's name for messages) and raises a
``ValueError`` that names the field and shows the bad value, so a malformed payload says what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

# ISO-8601 / RFC 3339 with Z or an offset and up to 9 fractional digits (Coinbase sends 6, Kraken 9).
_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")


def mapping(obj: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{what} must be a JSON object, got {obj!r:.80}")
    return obj


def get(obj: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise ValueError(f"{what} field {key!r} is missing") from None


def text(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = get(obj, key, what)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} field {key!r} must be a non-empty string, got {value!r:.40}")
    return value


def count(obj: Mapping[str, Any], key: str, what: str) -> int:
    """A non-negative JSON integer (ids, times in ms or s, counts)."""
    value = get(obj, key, what)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} field {key!r} must be a non-negative integer, got {value!r:.40}")
    return value


def decimal(obj: Mapping[str, Any], key: str, what: str, *, number: bool = False) -> Decimal:
    """A finite non-negative decimal. By default a decimal string (prices and sizes: a float there would
    already have lost digits); with ``number`` a JSON number as well: Decimal from ``parse_float=Decimal``,
    an int, a float through its shortest repr, or its text."""
    value, kind = get(obj, key, what), "a number" if number else "a decimal string"
    allowed = (Decimal, int, float, str) if number else (str,)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise ValueError(f"{what} field {key!r} must be {kind}, got {value!r:.40}")
    try:
        result = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise ValueError(f"{what} field {key!r} must be {kind}, got {value!r:.40}") from None
    if not result.is_finite() or result < 0:
        raise ValueError(f"{what} field {key!r} must be a finite non-negative number, got {value!r:.40}")
    return result


def iso_time(obj: Mapping[str, Any], key: str, what: str, *, kind: str = "an ISO-8601 time") -> datetime:
    """A UTC time from ISO-8601 / RFC 3339 text with Z or an offset; digits beyond the microsecond are dropped
    (truncated, never rounded)."""
    value = get(obj, key, what)
    m = _TIME.fullmatch(value) if isinstance(value, str) else None
    try:
        if m is None:
            raise ValueError
        head, frac, zone = m.groups()
        return datetime.fromisoformat(f"{head}.{(frac or '').ljust(6, '0')[:6]}{zone}").astimezone(UTC)
    except ValueError:
        raise ValueError(f"{what} field {key!r} must be {kind}, got {value!r:.40}") from None


def aware(t: datetime, name: str) -> datetime:
    if not isinstance(t, datetime) or t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {t!r}")
    return t
