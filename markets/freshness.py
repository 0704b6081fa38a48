"""Whether each live feed is alive, from what its stream last wrote to MongoDB (pure: no Django here).

The stream rewrites every feed's record about once a second (state, last trade, ``updated_at``), so a record
tells two things: whether a stream is still reporting, and how long ago the feed's last trade happened. A
feed is fresh when its stream reported within the stall limit (or ``REPORT_SECONDS``, whichever is longer) and
either its socket is ``connected`` or its last trade is no older than the stall limit. A connected feed with no
recent trade is a quiet market, not a fault: the stream's watchdog judges the socket by everything it hears
(heartbeats, pongs to its pings) and marks it ``reconnecting`` the moment nothing is heard for the stall limit.
A reconnect shorter than the limit is not a problem; one longer than it is. ``/readyz`` and ``manage.py feed
check`` judge by this one rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

REPORT_SECONDS = 5.0  # the stream reports every second; a record this old means it is not running (or stuck)


@dataclass(frozen=True, slots=True)
class FeedReport:
    """What a stream last wrote about one feed (the fields of ``markets.models.Feed`` read here)."""

    exchange: str
    symbol: str
    state: str
    last_trade_at: datetime | None
    updated_at: datetime | None
    last_error: str = ""

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> FeedReport:
        """From a stored record (an ORM ``values()`` row or a raw document; naive times are UTC)."""
        return cls(
            exchange=row["exchange"],
            symbol=row["symbol"],
            state=row.get("state") or "down",
            last_trade_at=_utc(row.get("last_trade_at")),
            updated_at=_utc(row.get("updated_at")),
            last_error=row.get("last_error") or "",
        )


@dataclass(frozen=True, slots=True)
class FeedVerdict:
    """One feed judged at ``now``: ages in seconds (None when unknown) and the problem ("" when fresh)."""

    feed: FeedReport
    age_seconds: float | None  # since the last trade's exchange time
    reported_seconds_ago: float | None  # since the stream last wrote the record
    problem: str

    @property
    def fresh(self) -> bool:
        return not self.problem

    @property
    def name(self) -> str:
        return f"{self.feed.exchange}:{self.feed.symbol}"

    def as_dict(self) -> dict[str, Any]:
        """For JSON: the feed, its state and ages, and what is wrong with it (null when fresh)."""
        return {
            "exchange": self.feed.exchange,
            "symbol": self.feed.symbol,
            "state": self.feed.state,
            "fresh": self.fresh,
            "last_trade_at": None if self.feed.last_trade_at is None else self.feed.last_trade_at.isoformat(),
            "age_seconds": _round(self.age_seconds),
            "reported_seconds_ago": _round(self.reported_seconds_ago),
            "problem": self.problem or None,
        }


def feed_verdict(feed: FeedReport, *, now: datetime, stall_seconds: float) -> FeedVerdict:
    """Judge one feed at ``now`` against its stall limit (see the module's docstring)."""
    age = _seconds(now, feed.last_trade_at)
    reported = _seconds(now, feed.updated_at)
    report_limit = max(stall_seconds, REPORT_SECONDS)
    if reported is None or reported > report_limit:
        since = "ever" if reported is None else f"for {reported:.1f} s"
        problem = f"no report from its stream {since} (limit {report_limit:g} s): is `manage.py stream` running?"
    elif feed.state == "down":
        problem = f"down{f' ({feed.last_error})' if feed.last_error else ''}"
    elif feed.state == "connected":
        problem = ""  # trades or not: the socket is heard, so a quiet market is not a dead feed
    elif age is None:
        problem = f"{feed.state}, no trade received yet"
    elif age > stall_seconds:
        problem = f"{feed.state}, no trade for {age:.1f} s (limit {stall_seconds:g} s)"
    else:
        problem = ""
    return FeedVerdict(feed, age, reported, problem)


def feed_verdicts(feeds: Iterable[FeedReport], *, now: datetime, stall_seconds: float) -> list[FeedVerdict]:
    """Every feed judged, in (exchange, symbol) order."""
    ordered = sorted(feeds, key=lambda f: (f.exchange, f.symbol))
    return [feed_verdict(f, now=now, stall_seconds=stall_seconds) for f in ordered]


def _seconds(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _utc(t: datetime | None) -> datetime | None:
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
