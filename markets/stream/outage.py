"""How the stream lives through a database outage: one view of whether MongoDB takes writes, logged once per outage.

Every job of the stream that needs the database (storing a batch, writing the candles, the feed records, recording
a gap) reports here what failed and what it keeps for a retry (``failed``), or that it went through (``ok``). An
outage is logged when it begins (once for each kind of job, with what is kept), every ``STILL_DOWN_EVERY`` seconds
while it lasts (with how many trades are buffered), and once when it ends (how long it lasted); the gauge
``tradingsite_stream_database_up`` follows it. Nothing here raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from .. import metrics

log = logging.getLogger(__name__)
STILL_DOWN_EVERY = 30.0  # seconds between two "still down" lines of one outage
MAX_BACK_OFF = 5.0  # the longest wait between two tries of a failed database job
# the kinds of the stream's database jobs, whose failures are told apart
STORING, COUNTING, CANDLES, FEEDS = (
    "storing trades",
    "counting trades into candles",
    "writing the 1m candles",
    "writing the feed records",
)


class DatabaseHealth:
    """Whether one exchange's stream finds its database answering; ``buffered()`` tells how many trades wait.

    An outage begins with a failed job and ends when every kind of job that failed has gone through again (one
    kind working while another still fails is not the end of it)."""

    def __init__(self, exchange: str, buffered: Callable[[], int] = lambda: 0) -> None:
        self.exchange = exchange
        self.down_since: float | None = None  # monotonic time of the first failure of the outage
        self.outages = 0
        self._buffered = buffered
        self._failing: set[str] = set()  # the kinds of job failing now
        self._told: set[str] = set()  # the kinds of job whose failure this outage has logged
        self._said_at = 0.0
        metrics.database_up.labels(exchange).set(1)

    @property
    def up(self) -> bool:
        """False from a failed job until every kind that failed has gone through again."""
        return self.down_since is None

    def failed(self, job: str, exc: BaseException, kept: str) -> None:
        """``job`` (e.g. "storing trades") failed with ``exc``; ``kept`` says what is kept and retried."""
        now = time.monotonic()
        self._failing.add(job)
        if self.down_since is None:
            self.down_since = self._said_at = now
            self.outages += 1
            metrics.database_up.labels(self.exchange).set(0)
        if job not in self._told:
            self._told.add(job)
            log.warning(
                "%s: the database failed %s (%s: %s); %s, retried with back-off until it answers",
                self.exchange,
                job,
                type(exc).__name__,
                str(exc)[:300],
                kept,
            )
        elif now - self._said_at >= STILL_DOWN_EVERY:
            self._said_at = now
            log.warning(
                "%s: the database is still down after %.0f s (%s: %s); %d trades buffered",
                self.exchange,
                now - self.down_since,
                type(exc).__name__,
                str(exc)[:120],
                self._buffered(),
            )

    def ok(self, *jobs: str) -> None:
        """These kinds of job went through: the outage, if there was one, is over once none fails any more."""
        if self.down_since is None:
            return
        self._failing.difference_update(jobs)
        if self._failing:
            return
        log.warning(
            "%s: the database answers again after %.1f s; writing the %d trades buffered and the candles of every "
            "minute they touch",
            self.exchange,
            time.monotonic() - self.down_since,
            self._buffered(),
        )
        self.down_since = None
        self._told.clear()
        metrics.database_up.labels(self.exchange).set(1)


def back_off_delay(failures: int, base: float = 0.25) -> float:
    """The wait after ``failures`` failed tries in a row: ``base`` doubling up to ``MAX_BACK_OFF``."""
    return min(MAX_BACK_OFF, base * 2 ** max(0, min(failures - 1, 16)))


async def pause(seconds: float, stopping: asyncio.Event) -> bool:
    """Wait ``seconds``, or less if ``stopping`` is set meanwhile; True when stopping."""
    try:
        async with asyncio.timeout(seconds):
            await stopping.wait()
    except TimeoutError:
        return False
    return True


async def supervised(
    exchange: str,
    name: str,
    work: Callable[[], Coroutine[Any, Any, None]],
    stopping: asyncio.Event,
    *,
    until_done: bool = False,
) -> None:
    """Run ``work`` until it returns; when it raises, log it (the first time and every tenth) and start it again
    after a back-off. Once ``stopping``, it is not started again, unless ``until_done`` (the flusher, which ends by
    itself once all is written: it gets a few more tries)."""
    failures = 0
    while True:
        try:
            await work()
            return
        except Exception:
            failures += 1
            delay = back_off_delay(failures, base=1.0)
            if failures == 1 or failures % 10 == 0:
                log.exception(
                    "%s: the %s task failed (%d in a row); what it holds is kept, restarted in %.0f s",
                    exchange,
                    name,
                    failures,
                    delay,
                )
            if await pause(delay, stopping):
                if not until_done or failures > 5:
                    return
                await asyncio.sleep(delay)
