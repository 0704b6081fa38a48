"""Reading times people and scripts type, for the commands and the API alike: ISO-8601, epoch milliseconds,
``now`` or ``<n>m|h|d ago``, always to UTC. One grammar, one set of messages. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)  # before Bitcoin's first block: no market data can be older
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # the commands' bound; the API's is ``ahead`` of now
FORMS = (
    "ISO-8601 (2024-08-08T23:54:00Z; a time without an offset is UTC), epoch milliseconds (digits only), "
    "now, or <n>m|h|d ago (90m ago, 6h ago, 7d ago)"
)
_EPOCH_ZERO = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_EPOCH = re.compile(r"[+-]?[0-9]+")
_AGO = re.compile(r"([0-9]{1,6})\s*(m|h|d)\s+ago")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def iso(t: datetime) -> str:
    """``t`` as ISO-8601 in UTC with a ``Z``, to the millisecond."""
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_epoch_ms(t: datetime) -> int:
    return (t - _EPOCH_ZERO) // _MS


def parse_time(text: str, *, now: datetime | None = None, ahead: timedelta | None = None) -> datetime:
    """``text`` as a UTC-aware datetime, by :data:`FORMS`. ``now`` is read once by the caller so that several
    times of one request agree (default: the clock). Accepted times run from :data:`EARLIEST` to ``now + ahead``
    (or :data:`LATEST` without ``ahead``); a time with microseconds is rounded up to the next whole millisecond
    (MongoDB keeps milliseconds, so a half-open ``[start, end)`` means the same on stored times).
    ValueError says why a value is refused, and what was probably meant."""
    value = str(text).strip()
    now = now or datetime.now(UTC)
    latest = LATEST if ahead is None else now + ahead
    if not value:
        raise ValueError(f"is empty; give {FORMS}")
    if len(value) > 64:
        raise ValueError(f"{value[:64] + '...'!r} is not a time: {FORMS}")
    lowered = value.lower()
    if lowered == "now":
        t = now
    elif m := _AGO.fullmatch(lowered):
        try:
            t = now - timedelta(**{_UNITS[m[2]]: int(m[1])})
        except OverflowError:
            raise ValueError(f"{value} is before {iso(EARLIEST)}, the earliest time accepted") from None
    elif _EPOCH.fullmatch(value):
        t = _from_epoch(value, latest, ahead)
    else:
        t = _from_iso(value)
    _check(value, t, latest, ahead)
    return t if t.microsecond % 1000 == 0 else t + timedelta(microseconds=1000 - t.microsecond % 1000)


def _from_epoch(text: str, latest: datetime, ahead: timedelta | None) -> datetime:
    n, lo, hi = int(text), to_epoch_ms(EARLIEST), to_epoch_ms(latest)
    if n < 0:
        raise ValueError(
            f"{text} is a negative epoch; epoch milliseconds are digits only, at least {lo} ({iso(EARLIEST)})"
        )
    if n < lo:
        seconds = lo <= n * 1000 <= hi
        hint = f"; {n} looks like epoch seconds: times are epoch milliseconds ({n * 1000})" if seconds else ""
        raise ValueError(f"epoch ms {n} is before {iso(EARLIEST)} (epoch ms {lo}), the earliest time accepted{hint}")
    if n > hi:
        micro = lo <= n // 1000 <= hi
        hint = f"; {n} looks like epoch microseconds: times are epoch milliseconds ({n // 1000})" if micro else ""
        _late(f"epoch ms {n}", f"{iso(latest)} (epoch ms {hi})", ahead, hint)
    return _EPOCH_ZERO + timedelta(milliseconds=n)


def _from_iso(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        # A literal "+" in a query string arrives as a space: "...T01:00:00 01:00".
        plus = text[::-1].replace(" ", "+", 1)[::-1]
        if " " in text and _parses(plus):
            raise ValueError(f"{text!r} is not a time: a '+' in a URL must be sent as %2B ({plus})") from None
        raise ValueError(
            f"{text!r} is neither ISO-8601 (2024-08-08T23:54:00Z), epoch milliseconds, now nor <n>m|h|d ago (6h ago)"
        ) from None
    if t.tzinfo is None or t.utcoffset() is None:
        t = t.replace(tzinfo=UTC)
    try:
        return t.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00
        raise ValueError(f"{text} is before {iso(EARLIEST)}, the earliest time accepted") from None


def _check(text: str, t: datetime, latest: datetime, ahead: timedelta | None) -> None:
    if t < EARLIEST:
        raise ValueError(f"{text} is before {iso(EARLIEST)}, the earliest time accepted")
    if t > latest:
        _late(text, iso(latest), ahead, "")


def _late(text: str, latest: str, ahead: timedelta | None, hint: str) -> None:
    if ahead is None:
        raise ValueError(f"{text} is after {latest}, the latest time accepted{hint}")
    raise ValueError(f"{text} is more than {ahead.days} days after now; the latest time accepted is {latest}{hint}")


def _parses(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def parse_range(start: str, end: str, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``--start``/``--end`` of a command as UTC times, start before end; a ValueError names the option."""
    now = now or datetime.now(UTC)  # read once: "--start 2h ago --end now" is exactly two hours
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
