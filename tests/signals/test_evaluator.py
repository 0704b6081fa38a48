"""The same candles give the same decisions live, after a restart, after a backfill and in a backtest."""

from __future__ import annotations

import dataclasses
from collections import Counter
from decimal import Decimal

import pytest

from signals.evaluator import Evaluator
from signals.indicators import DEFAULT_WINDOW, MIN_WINDOW
from signals.rules import Action, Decision, VoteParams
from tests.signals.walks import bar, random_walk

STORED, LIVE = 1200, 900  # candles in the store when the stream starts, candles closed live afterwards


def evaluator(**kw: object) -> Evaluator:
    return Evaluator("binance", "BTCUSDT", "1m", **kw)  # type: ignore[arg-type]


def live(bars: list, stored: int) -> list[Decision]:
    """A stream warmed with the first ``stored`` candles, fed the rest one at a time."""
    ev = evaluator()
    ev.warm(bars[:stored])
    return [d for b in bars[stored:] for d in ev.feed(b)]


def backtest(bars: list, start: int) -> list[Decision]:
    """A replay: every candle loaded at once, then decisions for the candles from ``start`` on."""
    ev = evaluator(keep=len(bars))
    ev.warm(bars)
    return ev.decide_from(bars[start].open_time)


@pytest.fixture(scope="module")
def bars() -> list:
    return random_walk(STORED + LIVE, seed=11)


@pytest.fixture(scope="module")
def reference(bars: list) -> list[Decision]:
    out = live(bars, STORED)
    assert len(out) == LIVE
    assert Counter(d.action for d in out)[Action.HOLD] < LIVE - 20  # signals to compare, cooldown in play
    return out


def test_backtest_decides_as_live(bars: list, reference: list[Decision]) -> None:
    """Replaying the stored candles in one go gives the live stream's decisions, candle for candle."""
    assert backtest(bars, STORED) == reference


@pytest.mark.parametrize("restart_after", [1, 137, 450, LIVE - 1])
def test_restart_warmed_from_storage_decides_as_live(bars: list, reference: list[Decision], restart_after: int) -> None:
    """A stream restarted after ``restart_after`` live candles, warmed with the last ``window - 1`` stored
    candles and the signals it had stored, goes on exactly as the uninterrupted stream."""
    first = evaluator()
    first.warm(bars[:STORED])
    before = [d for b in bars[STORED : STORED + restart_after] for d in first.feed(b)]
    stored_signals = [(d.open_time, d.action) for d in before if d.action is not Action.HOLD]
    second = evaluator(signals=stored_signals)
    second.warm(bars[STORED + restart_after - (DEFAULT_WINDOW - 1) : STORED + restart_after])
    after = [d for b in bars[STORED + restart_after :] for d in second.feed(b)]
    assert before + after == reference


def test_backfill_rewrite_recomputes_to_the_corrected_series(bars: list) -> None:
    """A backfill rewriting a candle already decided yields new decisions for it and every later candle, and
    the latest decision per candle is what a backtest of the corrected series gives (cooldown rewound)."""
    ev = evaluator()
    ev.warm(bars[:STORED])
    latest: dict = {}
    corrected = list(bars)
    for k in range(STORED, len(bars)):
        for d in ev.feed(bars[k]):
            latest[d.open_time] = d
        if k == STORED + 500:
            i = k - 30
            corrected[i] = dataclasses.replace(
                bars[i], close=bars[i].close * Decimal("0.99"), low=min(bars[i].low, bars[i].close * Decimal("0.99"))
            )
            redone = ev.feed(corrected[i])
            assert [d.open_time for d in redone] == [b.open_time for b in bars[i : k + 1]]
            latest |= {d.open_time: d for d in redone}
    assert list(latest.values()) == backtest(corrected, STORED)
    assert list(latest.values()) != live(bars, STORED)  # the rewrite did change something


def test_first_decisions_of_a_new_symbol_wait_for_warm_up() -> None:
    """Without stored history the first 50 candles are HOLD (warming up); from the 51st the rules decide."""
    decisions = live(random_walk(120, seed=5), 0)
    warming = [d.reasons == (f"warming up: {k} of {MIN_WINDOW} candles",) for k, d in enumerate(decisions, start=1)]
    assert warming == [True] * (MIN_WINDOW - 1) + [False] * (120 - MIN_WINDOW + 1)
    assert {d.action for d in decisions[: MIN_WINDOW - 1]} == {Action.HOLD}


def test_a_flat_market_never_signals() -> None:
    """Quiet candles (every price equal): RSI is 0 by TA-Lib's convention and votes buy, alone: HOLD."""
    flat = [bar(i, *[Decimal("64000.00")] * 4) for i in range(200)]
    decisions = live(flat, 0)
    assert {d.action for d in decisions} == {Action.HOLD}
    assert decisions[-1].reasons == ("RSI 0.0 < 30", "net vote +0.20 is below the 0.30 threshold")


def test_random_walk_signals_on_well_under_ten_percent_of_candles() -> None:
    """On a seeded 2,000-candle random walk, BUY or SELL on well under 10 % of candles (printed)."""
    decisions = live(random_walk(2000, seed=2026), 0)
    counts = Counter(d.action for d in decisions)
    rate = (counts[Action.BUY] + counts[Action.SELL]) / len(decisions)
    print(
        f"\nrandom walk, 2,000 candles, ta-vote v1, cooldown {VoteParams().cooldown}: {counts[Action.BUY]} BUY, "
        f"{counts[Action.SELL]} SELL, {counts[Action.HOLD]} HOLD -> signals on {rate:.2%} of candles"
    )
    assert len(decisions) == 2000
    assert 0 < rate < 0.10
