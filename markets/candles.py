"""OHLCV candles built from trades, in exchange time. Pure: no Django.

A tick belongs to the candle whose open time is ``floor(tick.ts, interval)`` (candles are aligned to
the epoch, see :mod:`markets.intervals`). Within a candle, ticks are ordered by trade id, never by
time or arrival: the open is the price of the lowest id, the close the price of the highest.

- ``volume`` is the sum of quantities, ``quote_volume`` the sum of ``price * qty`` (exact: a result
  that would need rounding raises ``decimal.Inexact`` instead of being rounded);
- ``trades`` counts the exchange's raw trades, ``last_trade_id - first_trade_id + 1`` per tick, so a
  Binance aggregate trade counts as the raw trades it covers, as in Binance's own klines;
- ``taker_buy_volume``/``taker_buy_quote_volume`` sum the ticks whose taker bought;
- ``close_time`` is the open time plus the interval minus one millisecond, as Binance has it.

An interval without ticks has no candle here, except the flat ``synthetic`` ones of ``quiet_candles``.

:class:`CandleAccumulator` is the building block: ticks can be added in any order and two
accumulators of the same candle over disjoint ticks merge exactly. :func:`build_candles` makes the
candles of any ticks in one pass, :func:`merge_candles` joins the candles of two consecutive chunks of
id-ordered ticks, and :func:`stream_candles` yields each candle as soon as time-ordered ticks show it
complete (a file read row by row, a live feed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Clamped, Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow, Rounded

from .exchanges.base import CandleBar, TradeTick
from .intervals import floor, interval_delta

# Quote volumes are sums of products: computed with room to spare, and never silently rounded.
EXACT = Context(prec=100, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact, Rounded, Clamped])
ONE_MS = timedelta(milliseconds=1)

CandleKey = tuple[str, str, datetime]  # (exchange, symbol, open time)


@dataclass(slots=True)
class CandleAccumulator:
    """One candle being built. ``open_id``/``close_id`` are the trade ids the open and close came from."""

    exchange: str
    symbol: str
    interval: str
    open_time: datetime
    open_id: int
    close_id: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int
    taker_buy_volume: Decimal
    taker_buy_quote_volume: Decimal

    @classmethod
    def start(cls, tick: TradeTick, interval: str = "1m") -> CandleAccumulator:
        """The candle of ``interval`` that ``tick`` falls in, holding only that tick."""
        quote = EXACT.multiply(tick.price, tick.qty)
        buy = tick.taker_side == "buy"
        return cls(
            exchange=tick.exchange,
            symbol=tick.symbol,
            interval=interval,
            open_time=floor(tick.ts, interval),
            open_id=tick.trade_id,
            close_id=tick.trade_id,
            open=tick.price,
            high=tick.price,
            low=tick.price,
            close=tick.price,
            volume=tick.qty,
            quote_volume=quote,
            trades=_raw_trades(tick),
            taker_buy_volume=tick.qty if buy else Decimal(0),
            taker_buy_quote_volume=quote if buy else Decimal(0),
        )

    @property
    def key(self) -> CandleKey:
        """(exchange, symbol, open time): what identifies the candle within one interval."""
        return self.exchange, self.symbol, self.open_time

    def add(self, tick: TradeTick) -> None:
        """Count one more tick of this candle (ticks of one candle may come in any order; ids are unique)."""
        if (tick.exchange, tick.symbol) != (self.exchange, self.symbol) or not (
            self.open_time <= tick.ts < self.open_time + interval_delta(self.interval)
        ):
            raise ValueError(
                f"trade {tick.trade_id} of {tick.symbol} at {tick.ts.isoformat()} is not in the candle "
                f"{self.key} {self.interval}"
            )
        self.merge(CandleAccumulator.start(tick, self.interval))

    def merge(self, other: CandleAccumulator) -> None:
        """Take in ``other``, the same candle built from ticks disjoint from this one's."""
        if (other.key, other.interval) != (self.key, self.interval):
            raise ValueError(f"cannot merge candle {other.key} {other.interval} into {self.key} {self.interval}")
        if other.open_id < self.open_id:
            self.open_id, self.open = other.open_id, other.open
        if other.close_id > self.close_id:
            self.close_id, self.close = other.close_id, other.close
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.volume = EXACT.add(self.volume, other.volume)
        self.quote_volume = EXACT.add(self.quote_volume, other.quote_volume)
        self.trades += other.trades
        self.taker_buy_volume = EXACT.add(self.taker_buy_volume, other.taker_buy_volume)
        self.taker_buy_quote_volume = EXACT.add(self.taker_buy_quote_volume, other.taker_buy_quote_volume)

    def bar(self, *, source: str = "trades", closed: bool = True) -> CandleBar:
        """The candle as a record; ``closed`` says whether more ticks may still come for it."""
        return CandleBar(
            exchange=self.exchange,
            symbol=self.symbol,
            interval=self.interval,
            open_time=self.open_time,
            close_time=self.open_time + interval_delta(self.interval) - ONE_MS,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            quote_volume=self.quote_volume,
            trades=self.trades,
            taker_buy_volume=self.taker_buy_volume,
            taker_buy_quote_volume=self.taker_buy_quote_volume,
            source=source,
            closed=closed,
        )


def accumulate(ticks: Iterable[TradeTick], interval: str = "1m") -> dict[CandleKey, CandleAccumulator]:
    """The candles of ``ticks`` (any order, any symbols), by key, still open to more ticks."""
    out: dict[CandleKey, CandleAccumulator] = {}
    for tick in ticks:
        key = (tick.exchange, tick.symbol, floor(tick.ts, interval))
        have = out.get(key)
        if have is None:
            out[key] = CandleAccumulator.start(tick, interval)
        else:
            have.add(tick)
    return out


def build_candles(
    ticks: Iterable[TradeTick], interval: str = "1m", *, source: str = "trades", closed: bool = True
) -> list[CandleBar]:
    """The ``interval`` candles of ``ticks`` in one pass, ordered by (exchange, symbol, open time).

    ``ticks`` may come in any order (open and close follow trade ids) but must not repeat a trade.
    """
    accs = accumulate(ticks, interval)
    return [accs[k].bar(source=source, closed=closed) for k in sorted(accs)]


def merge_candles(earlier: Iterable[CandleBar], later: Iterable[CandleBar]) -> list[CandleBar]:
    """The candles of two consecutive chunks of id-ordered ticks, joined as if built in one pass.

    Every trade id behind ``earlier`` must be below every id behind ``later``: a candle present in both
    opens as in ``earlier`` and closes as in ``later`` (and takes ``later``'s ``source`` and ``closed``).
    """
    out: dict[tuple[str, str, str, datetime], CandleBar] = {}
    for bar in earlier:
        out[_bar_key(bar)] = bar
    for bar in later:
        key = _bar_key(bar)
        first = out.get(key)
        out[key] = bar if first is None else _joined(first, bar)
    return [out[k] for k in sorted(out)]


def stream_candles(
    ticks: Iterable[TradeTick], interval: str = "1m", *, source: str = "trades", last_closed: bool = True
) -> Iterator[CandleBar]:
    """Candles of ``ticks`` in non-decreasing time order (per exchange and symbol), each yielded once a
    tick of a later interval shows it complete; the candles still open at the end are yielded last with
    ``closed=last_closed``. Memory holds one candle per symbol.

    A tick older than its symbol's current candle raises ValueError (the input is not in time order).
    """
    step = interval_delta(interval)
    current: dict[tuple[str, str], CandleAccumulator] = {}
    for tick in ticks:
        acc = current.get((tick.exchange, tick.symbol))
        if acc is not None and acc.open_time <= tick.ts < acc.open_time + step:
            acc.add(tick)
            continue
        new = CandleAccumulator.start(tick, interval)
        if acc is not None:
            if new.open_time < acc.open_time:
                raise ValueError(
                    f"trade {tick.trade_id} of {tick.symbol} at {tick.ts.isoformat()} is older than the "
                    f"candle of {acc.open_time.isoformat()} already complete: ticks are not in time order"
                )
            yield acc.bar(source=source, closed=True)
        current[(tick.exchange, tick.symbol)] = new
    for key in sorted(current):
        yield current[key].bar(source=source, closed=last_closed)


def quiet_candles(
    exchange: str,
    symbol: str,
    before: tuple[int, datetime, Decimal],
    after: tuple[int, datetime],
    *,
    now: datetime,
    grace: timedelta,
) -> list[CandleBar]:
    """Flat zero-volume 1m candles, flagged ``synthetic``, for the minutes strictly between two consecutive
    trades ``before`` (id, time, price) and ``after`` (id, time) of a venue whose trade ids have no holes: with
    ``after``'s id right after ``before``'s, no trade happened in between, so those minutes were quiet, not
    missed. Their price is ``before``'s. Not consecutive ids: the minutes lie in an id hole (missing data, to
    be backfilled), and nothing is made. Minutes not over by ``now`` (plus ``grace``) are not made yet."""
    (first_id, first_ts, price), (next_id, next_ts) = before, after
    if next_id != first_id + 1:
        return []
    minute = timedelta(minutes=1)
    out, t = [], floor(first_ts, "1m") + minute
    while t < floor(next_ts, "1m") and t + minute + grace <= now:
        out.append(
            CandleBar(
                exchange,
                symbol,
                "1m",
                t,
                t + minute - ONE_MS,
                price,
                price,
                price,
                price,
                Decimal(0),
                Decimal(0),
                0,
                Decimal(0),
                Decimal(0),
                source="trades",
                closed=True,
                synthetic=True,
            )
        )
        t += minute
    return out


def _raw_trades(tick: TradeTick) -> int:
    return tick.last_trade_id - tick.first_trade_id + 1


def _bar_key(bar: CandleBar) -> tuple[str, str, str, datetime]:
    return bar.exchange, bar.symbol, bar.interval, bar.open_time


def _joined(first: CandleBar, then: CandleBar) -> CandleBar:
    return CandleBar(
        exchange=first.exchange,
        symbol=first.symbol,
        interval=first.interval,
        open_time=first.open_time,
        close_time=then.close_time,
        open=first.open,
        high=max(first.high, then.high),
        low=min(first.low, then.low),
        close=then.close,
        volume=EXACT.add(first.volume, then.volume),
        quote_volume=EXACT.add(first.quote_volume, then.quote_volume),
        trades=first.trades + then.trades,
        taker_buy_volume=EXACT.add(first.taker_buy_volume, then.taker_buy_volume),
        taker_buy_quote_volume=EXACT.add(first.taker_buy_quote_volume, then.taker_buy_quote_volume),
        source=then.source,
        closed=then.closed,
    )
