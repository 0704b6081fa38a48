"""A stream worker that shares its exchange's instruments with the other workers through leases (``markets.leases``).

:class:`LeasedSource` is the ``Source`` of ``manage.py stream --exchange X`` without ``--symbols``: every round (the
stream asks it every ``STREAM_LEASE_RENEW_SECONDS``) it reads the exchange's streamed instruments, runs one lease
round with them (``LeaseBook.rebalance``) and answers "streamed ∩ held": the stream follows that set, so a lease lost
is unsubscribed at once and one gained is subscribed and resumed by id from its last stored trade (as on a restart).

Trading: when the exchange has a trader, each round also takes or renews the singleton lease ``trading:<exchange>``
(``hold_singleton``); :meth:`LeasedSource.trading` is the trader's gate (the fence still valid by its local
deadline, no I/O). The trader decides on the stream's own closed candles, so the worker holding the trading lease
also streams the traded symbols: they are kept out of the shared group (``pinned``) and streamed by whoever holds
the trading lease, in addition to its share of the others.

A round that fails (the database down) changes nothing: the stream keeps what it holds (two workers streaming a
symbol for a while double nothing: storage is idempotent by trade id) and the failure is logged by the follower.
The rounds run on a thread of their own, every ``renew_seconds`` (the book uses that thread's database
connection), so a busy event loop never delays a renewal; the stream asks for the last answer more often than
that (no I/O). :meth:`release` gives every lease back at a clean stop, so the others take over at their next round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import Gauge

from ..leases import Fence, LeaseBook
from ..metrics import PREFIX
from .following import Latest, Source, _few

log = logging.getLogger(__name__)
# The symbols kept out of the shared group and streamed by the trading lease's holder, from the streamed ones.
Pinned = Callable[[tuple[str, ...]], frozenset[str]]

leases_held = Gauge(
    f"{PREFIX}_stream_leases_held", "Instruments this stream worker holds a lease on (and streams)", ["exchange"]
)
trading_held = Gauge(
    f"{PREFIX}_stream_trading_lease", "1 while this stream worker holds the exchange's trading lease", ["exchange"]
)


def trading_lease(exchange: str) -> str:
    """The name of the singleton lease whose holder trades ``exchange`` (one trader per exchange)."""
    return f"trading:{exchange}"


class LeasedSource:
    """Streamed ∩ held: a ``Source`` that runs a lease round each time it is asked; see the module docstring."""

    def __init__(
        self,
        exchange: str,
        streamed: Source,
        book: LeaseBook,
        *,
        pinned: Pinned | None = None,
        latest: Latest | None = None,
    ) -> None:
        self.exchange = exchange
        self.latest = latest  # asked by the follower for the symbols it just added (``following.catch_up``)
        self.book = book
        self.fence: Fence | None = None  # the trading lease while held (written by the lease thread)
        self._streamed = streamed
        self._pinned = pinned
        self._answer: tuple[tuple[str, ...], str] = ((), "")
        self._error: Exception | None = None
        self._answered = threading.Event()
        self._stopping = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __call__(self) -> tuple[tuple[str, ...], str]:
        """The answer of the last round: (the symbols to stream, a note); raises the last round's error while the
        rounds fail. The first call starts the rounds (on their own thread) and waits for the first one."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._rounds, name=f"lease-{self.exchange}", daemon=True)
            self._thread.start()
            self._answered.wait(self.book.lease_seconds)
        if self._error is not None:
            raise self._error
        return self._answer

    def _rounds(self) -> None:
        """Every ``renew_seconds`` until released: one round, its answer kept for the stream to follow. The rounds
        run here, never on the event loop: a busy stream cannot delay a renewal past the lease."""
        every = self.book.renew_seconds
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                self._answer, self._error = self.round(), None
            except Exception as exc:  # the follower logs it and keeps streaming what it streams
                self._error = exc
            self._answered.set()
            self._stopping.wait(max(0.0, every - (time.monotonic() - began)))

    @property
    def seam_seconds(self) -> float:
        """How long after taking a symbol its seam with the previous holder is checked (``check_seams``): by a
        lease's length the previous holder has stopped streaming it, or died."""
        return self.book.lease_seconds

    def trading(self) -> bool:
        """Whether this worker may trade now: it holds the trading lease and its fence is still valid (no I/O)."""
        fence = self.fence
        return fence is not None and self.book.valid(fence)

    def round(self) -> tuple[tuple[str, ...], str]:
        """Read the streamed instruments, take or renew the trading lease (with a trader), rebalance the rest;
        streamed ∩ held, plus the pinned (traded) symbols while holding the trading lease."""
        with self._lock:
            if self._closed:  # released: nothing is taken again
                return (), ""
            symbols, note = self._streamed()
            pinned = self._pinned(symbols) if self._pinned is not None else frozenset()
            if self._pinned is not None:
                self._hold_trading()
            shared = tuple(s for s in symbols if s not in pinned)
            change = self.book.rebalance(shared)
            mine = frozenset(change.held) | (pinned if self.fence is not None else frozenset())
            streaming = tuple(s for s in symbols if s in mine)
            leases_held.labels(self.exchange).set(len(change.held))
            if change.gained or change.lost:
                log.info(
                    "%s: leases: holding %d of %d (gained %d: %s; lost %d: %s)",
                    self.exchange,
                    len(change.held),
                    len(shared),
                    len(change.gained),
                    _few(sorted(change.gained)),
                    len(change.lost),
                    _few(sorted(change.lost)),
                )
            return streaming, note

    def _hold_trading(self) -> None:
        before = self.fence
        try:
            self.fence = self.book.hold_singleton(trading_lease(self.exchange))
        except Exception:
            self.fence = before  # its local deadline lapses on its own if the database stays away
            raise
        trading_held.labels(self.exchange).set(1 if self.fence is not None else 0)
        if (before is None) != (self.fence is None):
            if self.fence is not None:
                log.warning(
                    "%s: this worker holds the trading lease (token %d): it trades", self.exchange, self.fence.token
                )
            else:
                log.warning("%s: the trading lease is held by another worker: this one does not trade", self.exchange)

    def release(self) -> frozenset[str]:
        """At a clean stop: no more rounds, every lease and the heartbeat given back (after a round in flight, on
        the calling thread). Returns the symbols given back; raises when the database does not answer (then the
        leases run out by themselves)."""
        self._closed = True  # no round takes anything from now on; one in flight finishes first (the join)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(self.book.lease_seconds)
        given = self._release()
        leases_held.labels(self.exchange).set(0)
        trading_held.labels(self.exchange).set(0)
        return given

    def _release(self) -> frozenset[str]:
        self.fence = None
        return self.book.release_all()
