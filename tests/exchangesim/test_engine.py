"""Unit tests of the engine's pure pieces: wire formatting, aggregation, the interval calendar,
tape truncation and the synthetic generator's invariants."""

from __future__ import annotations

import calendar
import itertools
from datetime import UTC, datetime

import numpy as np
import pytest

from exchangesim.binance import wire
from exchangesim.engine.aggregate import DAY, MINUTE, aggregate, interval_floor, interval_next
from exchangesim.engine.batch import TradeBatch, aggregate_trades, group_starts
from exchangesim.engine.blocks import Block
from exchangesim.engine.market import Market
from exchangesim.engine.synthetic import SyntheticProducer
from exchangesim.engine.tape import Tape
from exchangesim.symbols import synthetic_spec

T0 = 1_722_470_400_000  # 2024-08-01 00:00 UTC, a Thursday


def _ms(*ymd_hms: int) -> int:
    return calendar.timegm((*ymd_hms, *(0,) * (6 - len(ymd_hms)))) * 1000


def _batch(times: list[int], prices: list[int], qtys: list[int], bm: list[bool], first_id: int = 100) -> TradeBatch:
    return TradeBatch(
        np.arange(first_id, first_id + len(times), dtype=np.int64),
        np.asarray(times, dtype=np.int64),
        np.asarray(prices, dtype=np.int64),
        np.asarray(qtys, dtype=np.int64),
        np.asarray(bm, dtype=bool),
    )


@pytest.mark.parametrize(
    ("units", "dp", "text"),
    [
        (0, 0, "0.00000000"),
        (5, 0, "5.00000000"),
        (123456, 2, "1234.56000000"),
        (1, 8, "0.00000001"),
        (7, 3, "0.00700000"),
        (100000000, 8, "1.00000000"),
        (-0, 2, "0.00000000"),
        (10**20 + 1, 8, "1000000000000.00000001"),
        (123456789, 10, "0.01234568"),
        (5, 9, "0.00000000"),
        (15, 9, "0.00000002"),
    ],
)
def test_fmt_writes_exactly_eight_decimals(units: int, dp: int, text: str) -> None:
    """``fmt(units, dp)`` is ``units / 10**dp`` with 8 decimals; more than 8 places round half-even."""
    assert wire.fmt(units, dp) == text


def test_aggregate_trades_groups_same_time_price_and_side_only() -> None:
    """Consecutive trades aggregate while time, price and taker side all repeat; any change starts a group."""
    t = _batch(
        times=[1, 1, 1, 1, 2, 2, 2, 2],
        prices=[10, 10, 11, 11, 11, 11, 11, 10],
        qtys=[1, 2, 3, 4, 5, 6, 7, 8],
        bm=[True, True, True, False, False, False, True, True],
    )
    a = aggregate_trades(t, 500)
    assert a.agg_ids.tolist() == [500, 501, 502, 503, 504, 505]
    assert a.first_ids.tolist() == [100, 102, 103, 104, 106, 107]
    assert a.last_ids.tolist() == [101, 102, 103, 105, 106, 107]
    assert a.qtys.tolist() == [3, 3, 4, 11, 7, 8]
    assert a.prices.tolist() == [10, 11, 11, 11, 11, 10]
    assert a.times.tolist() == [1, 1, 1, 2, 2, 2]
    assert a.buyer_maker.tolist() == [True, True, False, False, True, True]
    assert len(aggregate_trades(TradeBatch.empty(), 7)) == 0


def test_aggregate_sums_are_exact_and_split_taker_buys() -> None:
    """An Agg holds OHLC in ticks and exact volume, quote volume and taker-buy (``m`` false) sums."""
    t = _batch([1, 2, 3], [100, 300, 200], [2, 5, 7], [False, True, False])
    agg = aggregate(t)
    assert agg is not None
    assert (agg.open, agg.high, agg.low, agg.close) == (100, 300, 100, 200)
    assert (agg.volume, agg.quote, agg.count) == (14, 100 * 2 + 300 * 5 + 200 * 7, 3)
    assert (agg.taker_buy_volume, agg.taker_buy_quote) == (9, 100 * 2 + 200 * 7)
    assert (agg.first_id, agg.last_id) == (100, 102)
    assert aggregate(TradeBatch.empty()) is None


@pytest.mark.parametrize(
    "t",
    [
        _ms(2024, 8, 5),
        _ms(2024, 8, 7, 13, 5),
        _ms(2024, 8, 11, 23, 59, 59) + 999,
        _ms(2024, 12, 31, 12),
        _ms(2021, 1, 3),
        _ms(1970, 1, 5),
    ],
)
def test_interval_floor_week_opens_on_monday(t: int) -> None:
    """A 1w kline opens on the Monday 00:00 UTC at or before the time, and the next one 7 days later."""
    o = interval_floor(t, "1w")
    d = datetime.fromtimestamp(o / 1000, tz=UTC)
    assert (d.weekday(), d.hour, d.minute, d.second, d.microsecond) == (0, 0, 0, 0, 0)
    assert o <= t < o + 7 * DAY
    assert interval_next(o, "1w") == o + 7 * DAY


@pytest.mark.parametrize(
    ("t", "opens", "nxt"),
    [
        (_ms(2024, 2, 29, 23, 59), _ms(2024, 2, 1), _ms(2024, 3, 1)),
        (_ms(2024, 12, 31, 23, 59, 59) + 999, _ms(2024, 12, 1), _ms(2025, 1, 1)),
        (_ms(2023, 2, 1), _ms(2023, 2, 1), _ms(2023, 3, 1)),
        (_ms(2024, 7, 15, 8), _ms(2024, 7, 1), _ms(2024, 8, 1)),
    ],
)
def test_interval_month_follows_the_calendar(t: int, opens: int, nxt: int) -> None:
    """A 1M kline opens on the 1st of the UTC month and the next one on the 1st of the next month."""
    assert interval_floor(t, "1M") == opens
    assert interval_next(opens, "1M") == nxt


def _tape(rate: float = 40.0) -> tuple[Tape, SyntheticProducer]:
    spec = synthetic_spec("BTCUSDT")
    prod = SyntheticProducer(spec, 3)
    blocks = prod.history(T0 - 10 * MINUTE, T0, MINUTE, rate)

    def next_block(prev: Block | None, _t: int) -> Block:
        start = prev.t_end if prev else T0
        return prod.next_block(prev, start, (start // 1000 + 1) * 1000, rate)

    return Tape(spec, prod, blocks, T0, next_block), prod


def test_tape_truncate_keeps_ids_contiguous() -> None:
    """Cutting the live block mid-way keeps only trades up to the cut; the next block continues the ids."""
    tape, _ = _tape(rate=2000.0)
    tape.advance(T0 + 1500)
    cut = T0 + 1500
    block = tape.truncate(cut)
    assert block is not None
    assert block.t_end == cut + 1
    kept = tape.trades_of(block)
    assert len(kept) == block.n
    assert int(kept.times.max()) <= cut
    assert block.k == len(group_starts(kept))
    tape.advance(T0 + 4000)
    trades = tape.trades_between(T0 - 10 * MINUTE, T0 + 4000, 10**7)
    assert np.all(np.diff(trades.ids) == 1), "ids stay contiguous across history, live and the cut"
    assert np.all(np.diff(trades.times) >= 0)
    aggs = tape.aggs_between(T0 - 10 * MINUTE, T0 + 4000, 10**7)
    assert np.all(np.diff(aggs.agg_ids) == 1)
    assert aggs.first_ids[0] == trades.ids[0]
    assert aggs.last_ids[-1] == trades.ids[-1]
    assert np.all(aggs.first_ids[1:] == aggs.last_ids[:-1] + 1)
    assert tape.blocks[tape.blocks.index(block) + 1].first_id == block.first_id + block.n
    assert tape.truncate(cut) is None, "a block already ending at the cut is left alone"


@pytest.fixture(scope="module")
def history() -> tuple[SyntheticProducer, list[Block]]:
    """Three days of one-minute blocks at 20 trades/s."""
    prod = SyntheticProducer(synthetic_spec("ETHUSDT"), 11)
    return prod, prod.history(T0, T0 + 3 * DAY, MINUTE, 20.0)


def test_synthetic_blocks_hold_their_declared_groups(history: tuple[SyntheticProducer, list[Block]]) -> None:
    """Each block's trades aggregate into exactly ``k`` groups (no group repeats the previous one's
    time, price and side), ids chain from block to block, prices are positive, quantities at least one
    step, times inside the block, and both taker sides trade."""
    prod, blocks = history
    sides: set[bool] = set()
    for b in blocks[:: len(blocks) // 200]:
        t = prod.generate(b)
        assert len(t) == b.n
        if not b.n:
            continue
        assert len(group_starts(t)) == b.k
        a = aggregate_trades(t, b.first_agg)
        assert int(a.qtys.sum()) == int(t.qtys.sum())
        assert int(t.prices.min()) > 0
        assert int(t.qtys.min()) >= 1
        assert b.t_start <= int(t.times.min())
        assert int(t.times.max()) < b.t_end
        assert np.all(np.diff(t.times) >= 0)
        assert t.ids.tolist() == list(range(b.first_id, b.first_id + b.n))
        sides.update(t.buyer_maker.tolist())
    assert sides == {True, False}
    for prev, nxt in itertools.pairwise(blocks):
        assert nxt.first_id == prev.first_id + prev.n
        assert nxt.first_agg == prev.first_agg + prev.k
        assert nxt.t_start == prev.t_end


def test_synthetic_intensity_averages_the_configured_rate(history: tuple[SyntheticProducer, list[Block]]) -> None:
    """Over three days the mean number of trades per second is within 15% of the rate asked for."""
    _, blocks = history
    total = sum(b.n for b in blocks)
    seconds = (blocks[-1].t_end - blocks[0].t_start) / 1000
    assert total / seconds == pytest.approx(20.0, rel=0.15)


def test_synthetic_volatility_clusters(history: tuple[SyntheticProducer, list[Block]]) -> None:
    """Absolute one-minute returns are positively autocorrelated (calm and hectic stretches cluster)."""
    _, blocks = history
    r = np.abs(np.array([b.gen.lp_close - b.gen.lp_open for b in blocks]))
    x = r - r.mean()
    lag1 = float((x[1:] * x[:-1]).mean() / x.var())
    assert lag1 > 0.05, lag1
    closes = np.array([b.gen.lp_close for b in blocks])
    assert np.all(closes[:-1] == np.array([b.gen.lp_open for b in blocks[1:]])), "prices chain block to block"


def test_synthetic_history_prefix_is_stable() -> None:
    """History generated up to a later time starts with exactly the blocks generated up to an earlier one,
    so two simulators started at different times on the same day share their past."""
    spec = synthetic_spec("BTCUSDT")
    short = SyntheticProducer(spec, 5).history(T0, T0 + 100 * MINUTE, MINUTE, 50.0)
    long = SyntheticProducer(spec, 5).history(T0, T0 + 250 * MINUTE, MINUTE, 50.0)
    assert [b.gen for b in short] == [b.gen for b in long[:100]]
    other = SyntheticProducer(spec, 6).history(T0, T0 + 100 * MINUTE, MINUTE, 50.0)
    assert [b.gen for b in other] != [b.gen for b in short]


def test_rate_changes_take_effect_at_the_cut() -> None:
    """``set_flow(rate=...)`` changes how many trades a second the synthetic market makes from the moment it is
    made, up to load mode, with ids contiguous across the cuts. The market is pinned (seed 1 from T0, ticked by
    hand): a live one measured for a second or two is at the mercy of the day's volatility and bursts."""
    market = Market(symbols=("BTCUSDT",), rate=5.0, seed=1, history_days=0.0, start_ms=T0)
    tape = market.tapes["BTCUSDT"]

    def per_second(start: int, end: int) -> float:
        market.tick(end)
        return len(tape.trades_between(start, end - 1, 10**9)) / ((end - start) / 1000)

    slow = per_second(T0, T0 + MINUTE)
    market.set_flow(rate=400, at_ms=T0 + MINUTE)
    fast = per_second(T0 + MINUTE, T0 + MINUTE + 10_000)
    market.set_flow(rate=20_000, at_ms=T0 + MINUTE + 10_000)
    load = per_second(T0 + MINUTE + 10_000, T0 + MINUTE + 12_000)
    # within a factor of 3 of the rate asked for: it is modulated by volatility and bursts
    assert 5 / 3 < slow < 5 * 3, slow
    assert 400 / 3 < fast < 400 * 3, fast
    assert 20_000 / 3 < load < 20_000 * 3, load
    trades = tape.trades_between(T0, T0 + MINUTE + 12_000, 10**9)
    assert np.all(np.diff(trades.ids) == 1)
    assert market.emitted["BTCUSDT"] == len(trades)
