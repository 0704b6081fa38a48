"""Market: the tapes of every venue symbol, the clock that makes trades public, and market controls.

Tapes are keyed by ``tape_key(venue, symbol)``: Binance symbols by their own name (``BTCUSDT``), as
before venues other than Binance existed, any other venue's as ``venue:symbol`` (``coinbase:BTC-USD``).
Every synthetic tape of one base asset follows the same price reference, so venues move together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..symbols import SymbolSpec, synthetic_spec
from .aggregate import DAY, MINUTE
from .batch import AggBatch, TradeBatch, aggregate_trades, count_groups
from .blocks import Block
from .offload import BlockCache, Offload, Stopped
from .reference import PriceReference
from .replay import ReplayFormatError, ReplayProducer, load_replay
from .synthetic import SyntheticProducer, SynthParams
from .tape import Tape

log = logging.getLogger(__name__)


def now_ms() -> int:
    """Wall-clock time in ms since the epoch (UTC)."""
    return time.time_ns() // 1_000_000


def tape_key(venue: str, symbol: str) -> str:
    """The market's name of a venue symbol's tape."""
    return symbol if venue == "binance" else f"{venue}:{symbol}"


@dataclass(frozen=True, slots=True)
class Listing:
    """A synthetic venue symbol: where it trades, its spec (``base``/``quote`` are canonical asset codes,
    which the shared price reference is keyed by), its share of the market's trade rate, and the shape of its
    trading (``SynthParams``: the defaults unless given)."""

    venue: str
    spec: SymbolSpec
    rate_factor: float = 1.0
    params: SynthParams | None = None

    @property
    def key(self) -> str:
        return tape_key(self.venue, self.spec.symbol)


class Emission:
    """What one tape made public in one tick. ``symbol`` is the tape key; ``venue`` the venue it is on.

    ``aggs`` (the trades' aggregate trades, numbered from ``first_agg``) is built on first use and kept: only a
    Binance ``@aggTrade`` subscriber needs them, and building them for every tape that printed was half the clock's
    work over a universe."""

    __slots__ = ("_aggs", "first_agg", "now_ms", "symbol", "trades", "venue")

    def __init__(self, symbol: str, trades: TradeBatch, first_agg: int, now_ms: int, venue: str = "binance") -> None:
        self.symbol, self.trades, self.first_agg, self.now_ms, self.venue = symbol, trades, first_agg, now_ms, venue
        self._aggs: AggBatch | None = None

    @property
    def aggs(self) -> AggBatch:
        if self._aggs is None:
            self._aggs = aggregate_trades(self.trades, self.first_agg)
        return self._aggs

    def __repr__(self) -> str:
        return f"Emission({self.symbol!r}, {len(self.trades)} trades, {self.now_ms}, {self.venue!r})"


Listener = Callable[[int, list[Emission]], None]


class Market:
    """Every symbol's tape and the loop that advances them in real time."""

    # Live blocks hold about BLOCK_TRADES trades: a minute at the default rate (memory grows by one
    # small record a minute), down to a second in load mode (no big generation stall).
    BLOCK_TRADES = 3000
    LIVE_BLOCK_CHOICES = (1000, 2000, 5000, 10_000, 15_000, 20_000, 30_000, MINUTE)
    HISTORY_BLOCK_MS = MINUTE
    CACHE_TRADES = 4_000_000  # generated trades held for every tape together: about 130 MB
    WARM_SLICE_TRADES = 2_000_000  # trades one slice of the history warm-up reads (well under a second)
    WARM_PAUSE = 1.0  # after each slice the warm-up waits this many times as long as the slice took

    def __init__(
        self,
        *,
        symbols: tuple[str, ...],
        rate: float,
        seed: int,
        replay: tuple[Path, ...] = (),
        speed: float = 1.0,
        history_days: float = 7.0,
        start_ms: int | None = None,
        listings: tuple[Listing, ...] = (),
    ) -> None:
        self.rate = float(rate)
        self.paused = False
        self.started_ms = now_ms() if start_ms is None else start_ms
        self.tapes: dict[str, Tape] = {}
        self.kinds: dict[str, str] = {}
        self.venue_of: dict[str, str] = {}
        self.replays: dict[str, ReplayProducer] = {}
        self._synth: dict[str, SyntheticProducer] = {}
        self.stale_until: dict[str, int] = {}  # tape key -> prints nothing before
        # History queries run on worker threads (``offload.run``); generated blocks share one bounded cache.
        self.stopping = threading.Event()
        self.cache = BlockCache(self.CACHE_TRADES, self.stopping)
        self.offload = Offload(self.stopping)
        live_from = self.started_ms // MINUTE * MINUTE
        self.hist_from = (self.started_ms // DAY * DAY - round(history_days * DAY)) // MINUTE * MINUTE
        self.reference = PriceReference(seed, self.hist_from if history_days > 0 else live_from)
        for path in replay:
            for rec in load_replay(Path(path), seed):
                if rec.spec.symbol in self.tapes:
                    raise ReplayFormatError(
                        f"{path}: {rec.spec.symbol} is already replayed from "
                        f"{self.replays[rec.spec.symbol].source}; give one file per symbol"
                    )
                self._add_replay(ReplayProducer(rec, self.started_ms, speed))
        for sym in symbols:
            if sym.upper() not in self.tapes:
                self._add_synthetic(Listing("binance", synthetic_spec(sym)), seed, history_days)
        for listing in listings:
            if listing.key not in self.tapes:
                self._add_synthetic(listing, seed, history_days)
        self.listeners: list[Listener] = []
        self.emitted: dict[str, int] = dict.fromkeys(self.tapes, 0)  # trades made public since start
        self._next_agg: dict[str, int] = {}
        # tape key -> (last trade id, last aggregate id, last price in ticks) of what is public: /_sim/status reads
        # these for every tape without touching a block
        self.last: dict[str, tuple[int | None, int | None, int]] = {}
        for sym, tape in self.tapes.items():
            tape.skip_to(self.started_ms)
            last = tape.last_agg_id()
            self._next_agg[sym] = tape.spec.agg_id_base if last is None else last + 1
            self.last[sym] = (tape.last_trade_id(), last, tape.last_price())
        self.lag_max_ms = 0.0
        self._task: asyncio.Task | None = None
        self._warm_task: asyncio.Task | None = None

    # -- construction ---------------------------------------------------------------------------
    def _add_synthetic(self, listing: Listing, seed: int, history_days: float) -> None:
        key, spec = listing.key, listing.spec
        prod = SyntheticProducer(spec, seed, listing.params, reference=self.reference, key=key)
        live_from = self.started_ms // MINUTE * MINUTE
        # History is anchored to the UTC day, so runs started on the same day share it.
        rate = self.rate * listing.rate_factor
        blocks = prod.history(self.hist_from, live_from, self.HISTORY_BLOCK_MS, rate) if history_days > 0 else []
        if history_days <= 0:
            prod._start(live_from)

        phase = zlib.crc32(key.encode())

        def next_block(prev: Block | None, _t: int) -> Block:
            start = prev.t_end if prev else live_from
            stale = self.stale_until.get(key, 0)
            rate = 0.0 if self.paused or start < stale else self.rate * listing.rate_factor
            end = self.live_block_end(start, rate, phase)
            if start < stale < end:  # the stale window ends inside: trading resumes on time
                end = stale
            return prod.next_block(prev, start, end, rate)

        self.tapes[key] = Tape(spec, prod, blocks, live_from, next_block, self.cache)
        self.kinds[key] = "synthetic"
        self.venue_of[key] = listing.venue
        self._synth[key] = prod

    def _add_replay(self, prod: ReplayProducer) -> None:
        def next_block(prev: Block | None, _t: int) -> Block:
            return prod.block(0 if prev is None else prev.gen + 1)

        # The loop before the start is history; the clock starts where loop 0 does.
        self.tapes[prod.spec.symbol] = Tape(prod.spec, prod, [prod.block(-1)], prod.t0, next_block, self.cache)
        self.kinds[prod.spec.symbol] = "replay"
        self.venue_of[prod.spec.symbol] = "binance"
        self.replays[prod.spec.symbol] = prod

    def live_block_ms(self, rate: float) -> int:
        """Length of the next live block at ``rate`` trades/s (it divides a minute)."""
        wanted = self.BLOCK_TRADES / rate * 1000 if rate > 0 else MINUTE
        return next((ms for ms in self.LIVE_BLOCK_CHOICES if ms >= wanted), MINUTE)

    def live_block_end(self, start: int, rate: float, phase: int) -> int:
        """Where the live block starting at ``start`` ends: at the next multiple of its length (``live_block_ms``)
        shifted by ``phase`` (each tape's own, a hash of its key). Without the shift every quiet tape's block of a
        universe ended on the same minute, so one tick generated hundreds of blocks (half a second on the loop)."""
        size = self.live_block_ms(rate)
        offset = phase % size
        return (start - offset) // size * size + size + offset

    def specs_of(self, venue: str) -> dict[str, SymbolSpec]:
        """The specs of one venue's tapes, keyed by the venue's symbol names."""
        return {t.spec.symbol: t.spec for k, t in self.tapes.items() if self.venue_of[k] == venue}

    # -- running --------------------------------------------------------------------------------
    def tick(self, t_ms: int | None = None) -> list[Emission]:
        """Make public everything that happened up to ``t_ms`` and tell the listeners."""
        t_ms = now_ms() if t_ms is None else t_ms
        out = [e for e in (self._advance(key, t_ms) for key in self.tapes) if e is not None]
        self._notify(t_ms, out)
        return out

    def _advance(self, sym: str, t_ms: int) -> Emission | None:
        """Advance one tape to ``t_ms``: its new trades and their aggregate trades, or None."""
        trades = self.tapes[sym].advance(t_ms)
        if not len(trades):
            return None
        self.emitted[sym] += len(trades)
        first_agg = self._next_agg[sym]
        self._next_agg[sym] += count_groups(trades)
        self.last[sym] = (int(trades.ids[-1]), self._next_agg[sym] - 1, int(trades.prices[-1]))
        return Emission(sym, trades, first_agg, t_ms, self.venue_of[sym])

    def _notify(self, t_ms: int, emissions: list[Emission]) -> None:
        for listener in self.listeners:
            try:
                listener(t_ms, emissions)
            except Exception:  # a broken listener must not stop the market
                log.exception("market listener failed")

    async def run(self, tick_ms: int) -> None:
        """Tick every ``tick_ms`` until cancelled, measuring how late each tick comes (``lag_max_ms``: the
        longest the event loop was kept from the clock since the start; a second or more is logged)."""
        while True:
            self.tick()
            due = time.monotonic() + tick_ms / 1000
            await asyncio.sleep(tick_ms / 1000)
            late = (time.monotonic() - due) * 1000
            if late > self.lag_max_ms:
                self.lag_max_ms = late
            if late >= 1000:
                log.warning("the event loop was blocked for %.1f s (the clock ticked late)", late / 1000)

    def start(self, tick_ms: int, *, warm_history: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self.run(tick_ms))
        self._warm_task = loop.create_task(self.warm_history()) if warm_history else None

    @property
    def warming(self) -> bool:
        """Whether the history warm-up is still running."""
        return self._warm_task is not None and not self._warm_task.done()

    async def warm_history(self) -> None:
        """Aggregate every minute of history on a history worker, newest first, in slices of about
        ``WARM_SLICE_TRADES`` trades, so requests queued meanwhile wait for one slice at most.

        A cold request for long-interval klines must otherwise aggregate the whole history it covers
        (minutes at a high rate); warmed, it reads cached minute aggregates.
        """
        for sym, tape in self.tapes.items():
            if self.kinds[sym] != "synthetic":
                continue
            started = time.monotonic()
            first = tape.first_time // MINUTE * MINUTE
            minutes = range(self.started_ms // MINUTE * MINUTE - MINUTE, first - 1, -MINUTE)
            pending = iter(minutes)
            try:
                while True:
                    began = time.monotonic()
                    more = await self.offload.run(tape.warm_minutes, pending, self.WARM_SLICE_TRADES, kind="candles")
                    # a pause as long as the slice took: the warm-up keeps a worker (and the GIL) half the time
                    await asyncio.sleep((time.monotonic() - began) * self.WARM_PAUSE)
                    if not more:
                        break
            except Stopped:
                return
            log.info("history of %s warmed: %d minutes in %.1f s", sym, len(minutes), time.monotonic() - started)

    async def stop(self) -> None:
        """Stop the clock and the warm-up; history work in flight gives up at its next block."""
        self.offload.close()
        for task in (self._task, self._warm_task):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Stopped):
                    await task
        self._task = self._warm_task = None

    # -- controls -------------------------------------------------------------------------------
    def set_flow(self, *, rate: float | None = None, paused: bool | None = None, at_ms: int | None = None) -> None:
        """Change the synthetic trade rate or pause; takes effect now, or at ``at_ms`` for a market a test ticks
        by hand (the current block is cut there)."""
        t = now_ms() if at_ms is None else at_ms
        for sym in self._synth:
            self._cut(sym, t)
        if rate is not None:
            self.rate = float(rate)
        if paused is not None:
            self.paused = bool(paused)

    def set_stale(self, key: str, seconds: float) -> int:
        """The synthetic tape ``key`` prints nothing from now for ``seconds``; returns when it resumes (ms).

        The current block is cut now and the next blocks trade at rate zero until then, so trade ids stay
        contiguous across the silence, as on a venue whose matching engine went quiet.
        """
        t = now_ms()
        self._cut(key, t)
        self.stale_until[key] = max(self.stale_until.get(key, 0), t + round(seconds * 1000))
        return self.stale_until[key]

    def set_outlier(self, key: str, bps: float, seconds: float) -> tuple[int, int, int]:
        """Trades of tape ``key`` printed from now for ``seconds`` are ``bps`` off the market (a constant number
        of ticks worked out from the last price). Returns the window ``(from_ms, until_ms, ticks)``."""
        tape = self.tapes[key]
        start = max(now_ms(), tape.emitted_ms + 1)  # what is public already stays as it was
        ticks = round(tape.last_price() * bps / 10_000) or (1 if bps > 0 else -1)
        window = (start, start + round(seconds * 1000), ticks)
        tape.offsets.append(window)
        return window

    def _cut(self, key: str, t: int) -> None:
        """Emit up to ``t`` and cut the current block of a synthetic tape there (the generator then continues
        from the last trade kept)."""
        prod, tape = self._synth[key], self.tapes[key]
        emission = self._advance(key, t)
        if emission is not None:
            self._notify(t, [emission])
        block = tape.truncate(t)
        if block is not None:
            prod.truncated(block, tape.raw_price_before(t + 1))
