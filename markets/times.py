"""Reading times people and scripts type: ISO-8601 or epoch milliseconds, always to UTC. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EARLIEST = datetime(2009, 1, 3, tzinfo=UTC)  # nothing traded before the first bitcoin block
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_AGO = re.compile(r"([0-9]{1,6})\s*(m|h|d)\s+ago")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """``text`` as a UTC-aware datetime: epoch milliseconds (digits only), ISO-8601 (a time without a
    zone is read as UTC), ``now``, or ``<n>m|h|d ago``. ValueError says why a value is refused."""
    value = text.strip()
    now = now or datetime.now(UTC)
    if not value:
        raise ValueError("is empty; give ISO-8601 (2024-08-08T23:54:00Z) or epoch milliseconds")
    if value == "now":
        return now
    if m := _AGO.fullmatch(value):
        return now - timedelta(**{_UNITS[m[2]]: int(m[1])})
    if value.isascii() and value.isdigit():
        if len(value) > 15:
            raise ValueError(f"{value} is not epoch milliseconds (too many digits)")
        t = datetime.fromtimestamp(int(value) / 1000, UTC)
    else:
        try:
            t = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is neither ISO-8601 (2024-08-08T23:54:00Z) nor epoch milliseconds") from None
        try:
            t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+01:00
            raise ValueError(f"{value!r} is outside {EARLIEST.date()} .. {LATEST.date()}") from None
    if not EARLIEST <= t < LATEST:
        raise ValueError(f"{t.isoformat()} is outside {EARLIEST.date()} .. {LATEST.date()}")
    return t


def parse_range(start: str, end: str, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``--start``/``--end`` of a command as UTC times, start before end; a ValueError names the option."""
    times = []
    for name, text in (("start", start), ("end", end)):
        try:
            times.append(parse_time(text, now=now))
        except ValueError as exc:
            raise ValueError(f"--{name} {exc}") from None
    if times[0] >= times[1]:
        raise ValueError(
            f"--start must be before --end (got {times[0]:%Y-%m-%d %H:%M:%S} and {times[1]:%Y-%m-%d %H:%M:%S} UTC)"
        )
    return times[0], times[1]
