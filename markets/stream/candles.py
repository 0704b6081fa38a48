"""The 1m candles of the live stream, kept in memory as the ticks are stored (pure: no Django, no I/O).

Each batch is counted into its minutes right after it is stored, on the stream's one database thread, and the
candles that changed are written every ``candle_seconds``. A minute holding ticks that did not pass through here
(where a restart resumes, what a gap fill recovered, a minute already forgotten) is rebuilt from storage in the
job of the next batch: storage then holds every tick received before, and each tick counted into it afterwards
has a higher id. (Rebuilding the current minute from storage every second cost time in proportion to its ticks,
every second, and held the stream to about 5,000 trades/s.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ..candles import CandleAccumulator, merge_candles
from ..exchanges.base import CandleBar
from .config import ONE_MINUTE

CANDLE_MEMORY = timedelta(minutes=10)  # a closed minute's candle is kept this long for late ticks


@dataclass(slots=True)
class LiveMinute:
    """One 1m candle in the making: ``stored``, rebuilt from storage when the minute holds ticks this process
    did not count itself, and ``live``, the ticks counted since (all with higher ids). One at least is set."""

    stored: CandleBar | None = None
    live: CandleAccumulator | None = None

    def bar(self, *, closed: bool) -> CandleBar:
        """The candle of every tick of the minute so far."""
        if self.live is None:
            if self.stored is None:
                raise ValueError("a minute without ticks has no candle")
            return replace(self.stored, closed=closed)
        live = self.live.bar(closed=closed)
        return live if self.stored is None else merge_candles([self.stored], [live])[0]


class LiveCandles:
    """The 1m candles of one symbol, kept up from its ticks as they are stored. Pure: the stream calls it
    from its database thread only, and does the reading and writing around it.

    ``grace`` is how long after its minute ends a candle is closed (``markets.services.CANDLE_GRACE``).
    ``horizon`` is the newest minute that may hold stored ticks not counted here (the minute a restart resumes
    in, or one forgotten): such a minute is rebuilt from storage rather than started from new ticks.
    """

    def __init__(self, grace: timedelta, horizon: datetime | None = None) -> None:
        self.grace = grace
        self.horizon = horizon
        self.minutes: dict[datetime, LiveMinute] = {}
        self._changed: set[datetime] = set()  # since the candles were last written
        self._open: set[datetime] = set()  # written while the minute was not over

    def count(self, counted: dict[datetime, CandleAccumulator], restore: set[datetime]) -> set[datetime]:
        """Take in the candles of newly stored ticks, by minute. Returns the minutes to rebuild from storage
        instead: ``restore``, and those that may hold stored ticks not counted here (storage has the new ones)."""
        rebuild = set(restore)
        for minute, candle in counted.items():
            held = self.minutes.get(minute)
            if minute in rebuild:
                continue
            if held is None and self.horizon is not None and minute <= self.horizon:
                rebuild.add(minute)
                continue
            if held is None:
                self.minutes[minute] = LiveMinute(live=candle)
            elif held.live is None:
                held.live = candle
            else:
                held.live.merge(candle)
            self._changed.add(minute)
        return rebuild

    def restored(self, bars: list[CandleBar]) -> None:
        """Minutes just rebuilt from storage; the ticks counted into them from now on have higher ids."""
        for bar in bars:
            self.minutes[bar.open_time] = LiveMinute(stored=bar)
            self._changed.add(bar.open_time)

    def due(self, now: datetime, held: datetime | None = None) -> list[CandleBar]:
        """The candles to write: of the minutes changed since the last call, and of those closing now (their
        minute and the grace are over). Minutes closed ``CANDLE_MEMORY`` ago are forgotten. ``held``: the exchange
        time of the oldest trade received but not stored yet (a backlog after a database outage); no minute it may
        still add to is closed, so a candle is closed once, whole, and in order."""
        if held is not None and held < now:
            now = held
        closing = {m for m in self._open if m + ONE_MINUTE + self.grace <= now}
        minutes = sorted((self._changed | closing) & self.minutes.keys())
        self._changed = set()
        bars = [self.minutes[m].bar(closed=m + ONE_MINUTE + self.grace <= now) for m in minutes]
        self._open = (self._open - set(minutes)) | {b.open_time for b in bars if not b.closed}
        for m in [m for m in self.minutes if m + ONE_MINUTE + self.grace + CANDLE_MEMORY <= now]:
            if m not in self._open:
                del self.minutes[m]
                self.horizon = m if self.horizon is None else max(self.horizon, m)
        return bars

    def put_back(self, bars: list[CandleBar]) -> None:
        """Candles ``due`` handed out that could not be written (the database failed): they are due again, and a
        minute forgotten meanwhile is kept again, as it was."""
        for bar in bars:
            if bar.open_time not in self.minutes:
                self.minutes[bar.open_time] = LiveMinute(stored=replace(bar, closed=False))
            self._changed.add(bar.open_time)
