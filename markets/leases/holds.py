"""Holds on the ranges running backfills fill, so that the gap scan does not queue a second fill of them.

A backfill (``manage.py backfill``, the Celery ``backfill_range`` and ``backfill_history`` tasks) runs inside
:func:`range_held`: one document in ``backfill_hold`` (:data:`HOLDS`) says who fills what until when:

- ``exchange``, ``symbol``; ``first_id``/``last_id`` (trade ids, inclusive) and/or ``start``/``end`` (exchange
  times, half-open), whichever the holder knows (a manual backfill knows its times, a gap fill its ids);
- ``holder`` (``manage.py backfill trades (host:pid:random)``), ``taken_at``, ``expires``.

``expires`` is written as ``$$NOW + lease`` and compared with ``$$NOW``: the database's clock judges, as for the
stream's leases (:mod:`.book`). The holder renews it every ``renew`` seconds from a daemon thread while it runs and
deletes it when it ends, however it ends; a holder that dies stops renewing, and its hold no longer counts ``lease``
seconds later (a TTL index removes the document an hour after that). A hold that cannot be written or renewed
(the database is down) is logged and the backfill goes on: a hold only saves request weight, storage is
idempotent either way.

:func:`live_holds` and :func:`holder_of` are what the scan asks.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from .book import worker_id

log = logging.getLogger(__name__)

HOLDS = "backfill_hold"
LEASE_SECONDS = 60.0
RENEW_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Hold:
    """A live hold, as the scan reads it."""

    holder: str
    exchange: str
    symbol: str
    first_id: int | None
    last_id: int | None
    start: datetime | None
    end: datetime | None
    expires: datetime

    def covers(self, first_id: int, last_id: int, span: tuple[datetime, datetime] | None) -> bool:
        """Whether ids ``first_id..last_id`` (whose trades lie within ``span``, when known) overlap this hold."""
        ids = self.first_id is not None and self.last_id is not None
        if ids and self.first_id <= last_id and first_id <= self.last_id:  # type: ignore[operator]
            return True
        if self.start is not None and self.end is not None and span is not None:
            return span[0] < self.end and self.start <= span[1]
        return False

    def covers_time(self, start: datetime, end: datetime) -> bool:
        """Whether ``[start, end)`` overlaps this hold's times."""
        return self.start is not None and self.end is not None and start < self.end and self.start < end

    def describe(self) -> str:
        """``manage.py backfill trades (host:pid:ab12) (2026-12-07T10:00:00Z .. 2026-12-07T13:00:00Z; until ..)``."""
        what = []
        if self.first_id is not None:
            what.append(f"ids {self.first_id}..{self.last_id}")
        if self.start is not None and self.end is not None:
            what.append(f"{_iso(self.start)} .. {_iso(self.end)}")
        return f"{self.holder} ({', '.join(what)}; until {_iso(self.expires)})"


def backfill_held(what: str, **hold: Any) -> Any:
    """:func:`range_held` on the default database by ``<what> (this worker's id)``: what a backfill command or task
    wraps its run in (``hold``: exchange, symbol, and the ids and/or times it fills)."""
    from django.db import connection

    return range_held(connection.database, holder=holder_name(what), **hold)


def holder_name(what: str) -> str:
    """``manage.py backfill trades (host:pid:random)``: who holds, for the logs of the others."""
    return f"{what} ({worker_id()})"


@contextmanager
def range_held(
    database: Database[Any],
    *,
    holder: str,
    exchange: str,
    symbol: str,
    first_id: int | None = None,
    last_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    lease: float = LEASE_SECONDS,
    renew: float = RENEW_SECONDS,
) -> Iterator[str]:
    """Hold the range while the block runs (see the module docstring); yields the hold's id."""
    if not 0 < renew * 2 <= lease:
        raise ValueError(f"renew={renew!r}: expected at most half of lease={lease!r}")
    if (first_id is None) != (last_id is None) or (start is None) != (end is None):
        raise ValueError("give both first_id and last_id, or neither; both start and end, or neither")
    coll = database[HOLDS]
    key = secrets.token_hex(8)
    fields = {
        "exchange": exchange,
        "symbol": symbol,
        "first_id": first_id,
        "last_id": last_id,
        "start": start,
        "end": end,
        "holder": holder,
    }
    _ensure_index(database)
    ms = int(lease * 1000)
    _write(lambda: coll.update_one({"_id": key}, [{"$set": {**_literal(fields), **_times(ms, True)}}], upsert=True))
    stop = threading.Event()

    def renewing() -> None:
        while not stop.wait(renew):
            _write(lambda: coll.update_one({"_id": key}, [{"$set": _times(ms, False)}]))

    thread = threading.Thread(target=renewing, name=f"hold-{exchange}-{symbol}", daemon=True)
    thread.start()
    log.info("%s holds %s %s while it runs", holder, exchange, symbol)
    try:
        yield key
    finally:
        stop.set()
        thread.join(timeout=5)
        _write(lambda: coll.delete_one({"_id": key}))


def live_holds(database: Database[Any], exchange: str, symbol: str) -> list[Hold]:
    """The holds of ``exchange``/``symbol`` that have not expired (by the database's clock)."""
    try:
        docs = list(
            database[HOLDS].find(
                {"exchange": exchange, "symbol": symbol, "$expr": {"$gt": ["$expires", "$$NOW"]}}, {"_id": 0}
            )
        )
    except PyMongoError as exc:  # no holds known: the scan queues as it did without them
        log.warning("backfill holds of %s %s cannot be read: %s", exchange, symbol, exc)
        return []
    return [
        Hold(
            d["holder"],
            d["exchange"],
            d["symbol"],
            d.get("first_id"),
            d.get("last_id"),
            _aware(d.get("start")),
            _aware(d.get("end")),
            _aware(d["expires"]) or datetime.now(UTC),
        )
        for d in docs
    ]


def holds_check(exchange: str, symbol: str) -> Callable[[int, int], str | None] | None:
    """For the scan: ``check(first, last)`` naming the live hold (on the default database) that covers those ids
    of ``exchange``/``symbol`` (by ids, or by the time span of the stored ticks around them), None when none does;
    None when no hold of the symbol is live."""
    from django.db import connection

    from ..selectors import hole_span

    holds = live_holds(connection.database, exchange, symbol)
    if not holds:
        return None

    def check(first_id: int, last_id: int) -> str | None:
        hold = holder_of(holds, first_id, last_id, hole_span(exchange, symbol, first_id, last_id))
        return hold.describe() if hold else None

    return check


def holder_of(
    holds: Iterable[Hold], first_id: int, last_id: int, span: tuple[datetime, datetime] | None
) -> Hold | None:
    """The first of ``holds`` that covers ids ``first_id..last_id`` (trades within ``span``), None if none does."""
    return next((h for h in holds if h.covers(first_id, last_id, span)), None)


def _times(ms: int, new: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"expires": {"$add": ["$$NOW", ms]}}
    if new:
        out["taken_at"] = "$$NOW"
    return out


def _literal(fields: dict[str, Any]) -> dict[str, Any]:
    """Values set by an update pipeline, taken literally (a string starting with ``$`` is not a field path)."""
    return {k: {"$literal": v} for k, v in fields.items()}


def _write(op: Callable[[], object]) -> None:
    try:
        op()
    except PyMongoError as exc:
        log.warning("a backfill hold could not be written (the scan may queue the same range): %s", exc)


_indexed: set[int] = set()


def _ensure_index(database: Database[Any]) -> None:
    if id(database.client) in _indexed:
        return
    try:
        database[HOLDS].create_index([("exchange", 1), ("symbol", 1)])
        database[HOLDS].create_index("expires", expireAfterSeconds=3600)
        _indexed.add(id(database.client))
    except PyMongoError as exc:
        log.warning("backfill holds: the indexes could not be made: %s", exc)


def _aware(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
