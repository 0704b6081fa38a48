"""A running stream that follows a changing set of symbols: every ``every`` seconds it asks its source which symbols
to stream and adds or removes the difference (``TradeStream.follow``), with no restart.

The source of ``manage.py stream`` without ``--symbols`` is the exchange's stored instruments (``instruments_source``):
those whose ``streamed`` is set. An instrument stored (or set streamed again) is streamed within ``every`` seconds
and a second or so of subscribing; one removed (``streamed`` cleared) stops as soon. An exchange with no instrument
stored at all (a fresh database) gets its default instruments stored first, as the exchange lists them; one whose
instruments were all removed streams none, and says so. A source that fails (the database down) leaves the set
as it is, and is asked again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from ..exchanges.registry import venue
from ..listing import InstrumentRefused, instruments_lookup
from ..models import Instrument
from ..selectors import streamed_symbols
from ..services import instruments_store
from ..types import TradeTick
from .config import SymbolState
from .outage import pause

log = logging.getLogger(__name__)
# What a source says: the symbols to stream, and a note for the operator ("" when there is nothing to say).
Source = Callable[[], tuple[tuple[str, ...], str]]


class Follower(Protocol):
    """What ``follow_source`` drives (a ``TradeStream``)."""

    state: dict[str, SymbolState]

    async def follow(self, symbols: Iterable[str]) -> tuple[list[str], list[str]]: ...

    def _take(self, tick: TradeTick) -> None: ...

    async def check_seams(self, symbols: list[str], after: float) -> None: ...


class Background:
    """The follower's work it does not wait for (catch-ups, ``TradeStream.check_seams``), kept referenced until it
    ends."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)


background = Background()
# How long a symbol just added may stay unheard on its socket before the exchange is asked for its latest trade
# (``catch_up``): longer than a loaded machine's socket takes to subscribe and deliver what REST already shows,
# short next to the minutes a quiet symbol may go without a trade.
CATCH_UP_GRACE = 5.0


# The exchange's latest trade of each of these symbols (one REST request each; a symbol it has none of is left out);
# a source that has one asks it for the symbols just added (``catch_up``).
Latest = Callable[[list[str]], dict[str, TradeTick]]


def instruments_source(exchange: str) -> Source:
    """The stored instruments of ``exchange`` that are streamed. With none stored at all (a fresh database), its
    default instruments are stored first, as the exchange lists them (what ``seed_instruments`` does): from then on
    the rows decide, so an instrument learned later by a history request (stored not streamed) changes nothing. When
    the exchange cannot be asked, the defaults are streamed unstored, and storing them is tried again next time."""
    defaults = tuple(symbol for symbol, _, _ in venue(exchange).default_instruments)

    def read() -> tuple[tuple[str, ...], str]:
        symbols = streamed_symbols(exchange=exchange)
        if symbols:
            return symbols, ""
        if Instrument.objects.filter(exchange=exchange).exists():
            return (), (
                f"{exchange}: no instrument is streamed (every stored one was removed); streaming none until one is "
                "added (manage.py instruments add, or the admin)"
            )
        try:
            lookup = instruments_lookup(exchange=exchange, symbols=defaults)
        except InstrumentRefused as exc:
            return defaults, (
                f"{exchange}: no instrument is stored, and its default instruments could not be ({exc}); streaming "
                f"them ({', '.join(defaults)}) and trying again"
            )
        instruments_store(instruments=lookup.found)
        unlisted = f"; {lookup.refusal()}" if lookup.unknown else ""
        return streamed_symbols(exchange=exchange), (
            f"{exchange}: no instrument was stored; stored its default instruments as the exchange lists them "
            f"({', '.join(i.symbol for i in lookup.found)}){unlisted}"
        )

    return read


async def follow_source(
    stream: Follower,
    source: Source,
    every: float,
    stopping: asyncio.Event,
    *,
    name: str = "",
    grace: float = CATCH_UP_GRACE,
) -> None:
    """Until ``stopping``: ask ``source`` (on a thread: it may read the database) and make ``stream`` follow it,
    every ``every`` seconds. Changes are logged, and a note when it changes. Symbols added are caught up
    (``catch_up``, after ``grace`` seconds) and their seams checked, in the background."""
    note: str | None = None
    failures = 0
    while True:
        try:
            symbols, said = await asyncio.to_thread(source)
        except Exception as exc:
            failures += 1
            if failures == 1:
                log.warning(
                    "%s: the symbols to stream could not be read (%s: %s); the same ones go on, asked again every %g s",
                    name,
                    type(exc).__name__,
                    str(exc)[:200],
                    every,
                )
        else:
            if failures:
                log.warning("%s: the symbols to stream are read again after %d failures", name, failures)
            failures = 0
            if said != note:
                note = said
                if said:
                    log.warning("%s", said)
            added, removed = await stream.follow(symbols)
            latest: Latest | None = getattr(source, "latest", None)
            if added and latest is not None:
                background.start(catch_up(stream, added, latest, name, grace, stopping))
                background.start(stream.check_seams(added, getattr(source, "seam_seconds", every)))
            if added or removed:
                log.info(
                    "%s: now streaming %d symbols: added %s; removed %s",
                    name,
                    len(symbols),
                    _few(added),
                    _few(removed),
                )
        if await pause(every, stopping):
            return


async def catch_up(
    stream: Follower, added: list[str], latest: Latest, name: str, grace: float, stopping: asyncio.Event
) -> None:
    """A symbol taken over from another worker resumes by id from its last stored trade; its first live trade opens
    the gap, but a quiet symbol may not trade again for minutes. So the exchange is asked for the latest trade of
    each symbol just added that its socket has not been heard from ``grace`` seconds later, and that trade is taken
    as a live one would be: a hole after the last stored trade is filled now. A symbol with nothing stored gets that
    trade stored as its resume point: should this worker die before its first live trades are written, the worker
    that takes the symbol over resumes from there by id (its own first live trade would leave the trades between
    unrecovered).

    Asked at once, REST is often ahead of a socket that is still subscribing or delivering: its latest trade, taken
    first, opened a gap of the trades the socket was about to deliver (a fill, and its REST requests, for nothing).
    And a symbol heard within the grace needs no request at all."""
    since = {s: (st, st.last_id) for s in added if (st := stream.state.get(s)) is not None}
    if await pause(grace, stopping):
        return
    # the same record (not removed, nor added again) and nothing taken since it was added: unheard
    unheard = [s for s, (st, last_id) in since.items() if stream.state.get(s) is st and st.last_id == last_id]
    if not unheard:
        return
    try:
        ticks = await asyncio.to_thread(latest, unheard)
    except Exception as exc:  # their first live trade still opens the gap
        log.warning(
            "%s: the latest trades of %d added symbols could not be read (%s: %s)",
            name,
            len(unheard),
            type(exc).__name__,
            str(exc)[:200],
        )
        return
    log.info(
        "%s: %d added symbols unheard on their sockets after %g s; their latest trades asked: %s",
        name,
        len(unheard),
        grace,
        _few(unheard),
    )
    for tick in ticks.values():
        stream._take(tick)


def _few(symbols: list[str], most: int = 10) -> str:
    if not symbols:
        return "none"
    more = f" and {len(symbols) - most} more" if len(symbols) > most else ""
    return ", ".join(symbols[:most]) + more
