"""Instruments enter storage only as their exchange lists them: a known exchange, a symbol it lists, and its own
data (canonical name, base, quote, status, trading filters). ``manage.py instruments``, ``manage.py
seed_instruments`` and the admin go through here; an exchange that cannot be reached stores nothing (nothing
unverified is stored).

- :func:`instruments_lookup` asks the exchange for symbols: the data of those it lists, and the names of those it
  does not (refused by name; the others are still found).
- :func:`instruments_trading`: every instrument an exchange lists as trading now (``--all``), of one quote or all.
- :func:`instruments_stream` stores instruments with their data and marks them streamed (a removed one is streamed
  again); :func:`instruments_remove` marks them removed, keeping their record and every stored trade and candle.
  The stream workers stream what is marked (``selectors.streamed_symbols``).
- :func:`history_queue` queues an added instrument's history from a given time for the Celery worker
  (``markets.tasks.backfill_history``, which runs :func:`instrument_history_fill`). Without it an instrument's
  record starts at its first live trade.

Instruments written directly through the ORM (tests, fixtures, a shell) are not checked: the rule is at the
door, not in ``Model.save``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from . import intervals as iv
from .backfill import BackfillSummary, trades_backfill
from .documents import to_ms
from .exchanges.base import InstrumentInfo, RestAdapter
from .exchanges.errors import BadRequest, ExchangeError, ExchangeUnavailable, RateLimited
from .exchanges.retry import RetryPolicy
from .exchanges.symbols import as_stored
from .models import Instrument
from .rebuild import candles_of_stored
from .services import instruments_set_streamed, instruments_store
from .venues import KNOWN_EXCHANGES, rest_adapter, rest_url

# Someone is waiting (a form, a command): a couple of quick tries, no long rate-limit sleeps.
VERIFY_POLICY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=1.0, max_wait=5.0)
STORE_CHUNK = 100  # instruments stored between two progress reports
PING_SECONDS = 1.0  # how long history_queue waits for a Celery worker to answer
T = TypeVar("T")


class InstrumentRefused(ValueError):
    """An instrument that may not be stored; ``field`` is the input at fault ("exchange", "symbol", or None
    when the exchange could not be asked), the message says why."""

    def __init__(self, message: str, *, field: str | None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Lookup:
    """What ``exchange`` lists of the symbols asked for (``found``, in the order asked) and what it does not."""

    exchange: str
    found: tuple[InstrumentInfo, ...]
    unknown: tuple[str, ...] = ()

    def refusal(self) -> str:
        """The unknown symbols, named: "FOOUSDT is not listed on binance"."""
        verb = "is" if len(self.unknown) == 1 else "are"
        return f"{', '.join(self.unknown)} {verb} not listed on {self.exchange}"


@dataclass(frozen=True, slots=True)
class Added:
    """Symbols of an add: ``new`` (stored now), ``again`` (had been removed, streamed again), ``already`` (stored and
    streamed before; the exchange's data refreshed) and ``unknown`` (refused: the exchange does not list them)."""

    exchange: str
    new: tuple[str, ...] = ()
    again: tuple[str, ...] = ()
    already: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def added(self) -> tuple[str, ...]:
        """The symbols this call started streaming."""
        return self.new + self.again


@dataclass(frozen=True, slots=True)
class Removed:
    """Symbols of a remove: ``removed`` now, ``already`` removed before, ``unknown`` (no such stored instrument)."""

    exchange: str
    removed: tuple[str, ...] = ()
    already: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HistoryQueued:
    """The history backfills sent for ``since``: the symbols ``queued``, how many Celery workers answered a ping
    right after, and ``problem`` when something was not queued (the broker could not be reached)."""

    since: datetime
    queued: tuple[str, ...]
    workers: int
    problem: str = ""


def instruments_lookup(*, exchange: str, symbols: Sequence[str]) -> Lookup:
    """The exchange's own data of ``symbols`` (upper-cased, each once) that it lists, and the names of those it does
    not. :class:`InstrumentRefused` for an unknown exchange, no symbol at all, or an exchange that cannot be asked."""
    _check_exchange(exchange)
    wanted = list(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))
    if not wanted:
        raise InstrumentRefused("no symbol given", field="symbol")
    listed = _asking(exchange, lambda adapter: _listed(adapter, exchange, wanted))
    found = {listed[s].symbol: listed[s] for s in wanted if s in listed}  # two spellings of one pair: stored once
    return Lookup(exchange, tuple(found.values()), tuple(s for s in wanted if s not in listed))


def instruments_verify(*, exchange: str, symbols: Sequence[str]) -> list[InstrumentInfo]:
    """All of ``symbols`` as the exchange lists them, or :class:`InstrumentRefused` naming the unknown ones (the
    admin's form asks for one symbol: it is stored or refused)."""
    lookup = instruments_lookup(exchange=exchange, symbols=symbols)
    if lookup.unknown:
        raise InstrumentRefused(lookup.refusal(), field="symbol")
    return list(lookup.found)


def instruments_trading(*, exchange: str, quote: str | None = None) -> list[InstrumentInfo]:
    """Every instrument ``exchange`` lists as trading now (its own status word), of ``quote`` (canonical: USDT,
    USD) when given, by symbol. :class:`InstrumentRefused` as for a lookup."""
    _check_exchange(exchange)
    infos = _asking(exchange, lambda adapter: adapter.trading_instruments())
    wanted = quote.strip().upper() if quote else None
    return sorted((i for i in infos if wanted is None or i.quote == wanted), key=lambda i: i.symbol)


def instruments_stream(
    *, instruments: Sequence[InstrumentInfo], progress: Callable[[int], None] | None = None
) -> Added:
    """Store ``instruments`` (of one exchange) with the exchange's data, each streamed from now on: new ones, and
    removed ones again. ``progress(n)`` is told of every ``n`` stored."""
    exchanges = {i.exchange for i in instruments}
    if len(exchanges) > 1:
        raise ValueError(f"instruments of one exchange at a time, got {', '.join(sorted(exchanges))}")
    if not instruments:
        return Added(exchange="")
    exchange = instruments[0].exchange
    symbols = [i.symbol for i in instruments]
    before = dict(Instrument.objects.filter(exchange=exchange, symbol__in=symbols).values_list("symbol", "streamed"))
    for n in range(0, len(instruments), STORE_CHUNK):
        part = instruments[n : n + STORE_CHUNK]
        instruments_store(instruments=part, streamed=True)
        if progress:
            progress(len(part))
    return Added(
        exchange,
        new=tuple(s for s in symbols if s not in before),
        again=tuple(s for s in symbols if before.get(s) is False),
        already=tuple(s for s in symbols if before.get(s) is True),
    )


def instruments_add(*, exchange: str, symbols: Sequence[str], progress: Callable[[int], None] | None = None) -> Added:
    """Look ``symbols`` up on ``exchange`` and stream those it lists (:func:`instruments_stream`); the result
    names those it does not list in ``unknown``. :class:`InstrumentRefused` as for a lookup."""
    lookup = instruments_lookup(exchange=exchange, symbols=symbols)
    added = instruments_stream(instruments=lookup.found, progress=progress)
    return Added(exchange, added.new, added.again, added.already, lookup.unknown)


def instruments_remove(*, exchange: str, symbols: Sequence[str]) -> Removed:
    """Stop streaming the stored ``symbols`` of ``exchange``: each keeps its record and all its stored data, and
    adding it again streams it again. Symbols that are not stored instruments are named in ``unknown``."""
    _check_exchange(exchange)
    wanted = list(dict.fromkeys(_stored_name(exchange, s.strip().upper()) for s in symbols if s.strip()))
    if not wanted:
        raise InstrumentRefused("no symbol given", field="symbol")
    stored = dict(Instrument.objects.filter(exchange=exchange, symbol__in=wanted).values_list("symbol", "streamed"))
    streamed = [s for s in wanted if stored.get(s) is True]
    instruments_set_streamed(exchange=exchange, symbols=streamed, streamed=False)
    return Removed(
        exchange,
        removed=tuple(streamed),
        already=tuple(s for s in wanted if stored.get(s) is False),
        unknown=tuple(s for s in wanted if s not in stored),
    )


def history_queue(*, exchange: str, symbols: Sequence[str], since: datetime) -> HistoryQueued:
    """Queue ``markets.tasks.backfill_history`` for each of ``symbols``: their trades from ``since`` to when the task
    runs, and their 1m candles. Then ask whether any Celery worker is there to run it (a ping of
    ``PING_SECONDS``): a queued task waits for one. A broker that cannot be reached is reported, not raised."""
    # Imported here: the tasks module imports this one.
    from .history_queue import SEND_RETRY
    from .tasks import backfill_history

    queued: list[str] = []
    try:
        for symbol in symbols:
            backfill_history.apply_async((exchange, symbol, int(to_ms(since))), retry_policy=SEND_RETRY)
            queued.append(symbol)
        workers = len(backfill_history.app.control.ping(timeout=PING_SECONDS) or [])
    except (OperationalError, RedisError, OSError) as exc:
        return HistoryQueued(since, tuple(queued), 0, f"the Celery broker (CELERY_BROKER_URL) cannot be reached: {exc}")
    return HistoryQueued(since, tuple(queued), workers)


def instrument_history_fill(
    *, adapter: RestAdapter, exchange: str, symbol: str, start: datetime, end: datetime
) -> tuple[BackfillSummary, int]:
    """Every trade of ``symbol`` from the start of the minute of ``start`` to ``end`` stored once (by id, as
    ``manage.py backfill --what trades``; whole minutes, so that the first candle is whole too), then the 1m candles
    of the minutes that hold them rebuilt, and the quiet minutes between them filled flat on a venue whose ids have
    no holes. Returns the trades' summary and how many candles were written. Idempotent."""
    lo = iv.floor(start, "1m")
    summary = trades_backfill(adapter=adapter, exchange=exchange, symbol=symbol, start=lo, end=end, candles=False)
    built = candles_of_stored(
        exchange=exchange, symbol=symbol, first=lo, last=end, quiet=adapter.capabilities.ids_contiguous
    )
    return summary, built.candles


def _check_exchange(exchange: str) -> None:
    if exchange not in KNOWN_EXCHANGES:
        raise InstrumentRefused(
            f"{exchange!r} is not a known exchange; known: {', '.join(KNOWN_EXCHANGES)}", field="exchange"
        )


def _asking(exchange: str, call: Callable[[RestAdapter], T]) -> T:
    """``call`` on a REST adapter of ``exchange`` (quick retries); an exchange that cannot be reached or answers
    with an error is :class:`InstrumentRefused` saying so."""
    adapter = rest_adapter(exchange, policy=VERIFY_POLICY)
    try:
        return call(adapter)
    except (ExchangeUnavailable, RateLimited) as exc:
        raise InstrumentRefused(
            f"{exchange} could not be reached at {rest_url(exchange)} ({exc.message}); nothing was stored, try again "
            "when it answers",
            field=None,
        ) from exc
    except ExchangeError as exc:
        raise InstrumentRefused(f"{exchange} refused the instrument list ({exc.message})", field=None) from exc
    finally:
        adapter.close()


def _listed(adapter: RestAdapter, exchange: str, symbols: list[str]) -> dict[str, InstrumentInfo]:
    """What the exchange lists of ``symbols``, by the name asked. An exchange refuses a whole query for one unknown
    symbol (Binance, Coinbase, Kraken all do): then its whole list is read once and the names are looked up in it,
    so that the answer names the unknown ones without a request per symbol."""
    try:
        infos = adapter.instruments(symbols)
        if len(symbols) == len(infos) == 1:  # asked by another of its names (Kraken's XBT/USD is XBTUSD)
            return {symbols[0]: infos[0]}
    except BadRequest:
        if len(symbols) == 1:
            return {}
        infos = adapter.instruments()
    by_symbol = {i.symbol: i for i in infos}
    return {s: by_symbol[name] for s in symbols if (name := _stored_name(exchange, s)) in by_symbol}


def _stored_name(exchange: str, symbol: str) -> str:
    """``symbol`` as the exchange's instruments are stored (Kraken's XBT/USD is XBTUSD); as given when it cannot be
    read as a pair (the exchange then says whether it lists it)."""
    try:
        return as_stored(exchange, symbol)
    except ValueError:
        return symbol
