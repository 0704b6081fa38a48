"""The ta-vote rules, threshold, cooldown and warm-up, table-driven on hand-made readings."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

import pytest

from signals.indicators import Reading, Values
from signals.rules import STRATEGY, VERSION, Action, CooldownState, VoteParams, decide
from tests.signals.walks import MINUTE, T0

# Nothing votes: SMA20 above SMA50 before and now, MACD above its signal before and now, RSI 50, close mid-band.
NEUTRAL = Values(
    close=100.0,
    sma20=101.0,
    sma50=100.0,
    rsi14=50.0,
    macd=1.0,
    macd_signal=0.0,
    macd_hist=1.0,
    bb_upper=110.0,
    bb_middle=100.0,
    bb_lower=90.0,
    atr14=1.0,
)


def reading(now: dict | None = None, prev: dict | None = None, *, candles: int = 1000, minute: int = 100) -> Reading:
    """A reading of candle T0 + ``minute`` with NEUTRAL values changed by ``now`` and ``prev``."""
    return Reading(
        "binance",
        "BTCUSDT",
        "1m",
        T0 + minute * MINUTE,
        candles,
        dataclasses.replace(NEUTRAL, **(now or {})),
        dataclasses.replace(NEUTRAL, **(prev or {})),
    )


MA_UP = ({"sma20": 101.0}, {"sma20": 99.0})
MA_DOWN = ({"sma20": 99.0}, {"sma20": 101.0})
MACD_UP = ({"macd": 1.0}, {"macd": -1.0})
MACD_DOWN = ({"macd": -1.0}, {"macd": 1.0})


def combine(*parts: tuple[dict, dict]) -> tuple[dict, dict]:
    now, prev = {}, {}
    for n, p in parts:
        now |= n
        prev |= p
    return now, prev


RULE_CASES = [
    # id, (now, prev), votes {rule: weight}, action
    ("neutral", ({}, {}), {}, Action.HOLD),
    ("ma cross up", MA_UP, {"ma_cross": "0.30"}, Action.BUY),
    ("ma cross up from a touch", ({"sma20": 101.0}, {"sma20": 100.0}), {"ma_cross": "0.30"}, Action.BUY),
    ("ma touch from above is no cross", ({"sma20": 100.0}, {"sma20": 101.0}), {}, Action.HOLD),
    ("ma still above", ({"sma20": 105.0}, {"sma20": 101.0}), {}, Action.HOLD),
    ("ma cross down", MA_DOWN, {"ma_cross": "-0.30"}, Action.SELL),
    ("ma still below", ({"sma20": 98.0}, {"sma20": 99.0}), {}, Action.HOLD),
    ("macd cross up alone is below the threshold", MACD_UP, {"macd_cross": "0.25"}, Action.HOLD),
    ("macd cross down", MACD_DOWN, {"macd_cross": "-0.25"}, Action.HOLD),
    ("macd still below", ({"macd": -2.0}, {"macd": -1.0}), {}, Action.HOLD),
    ("rsi 29.9 buys", ({"rsi14": 29.9}, {}), {"rsi": "0.20"}, Action.HOLD),
    ("rsi 30 does not vote", ({"rsi14": 30.0}, {}), {}, Action.HOLD),
    ("rsi 70 does not vote", ({"rsi14": 70.0}, {}), {}, Action.HOLD),
    ("rsi 70.1 sells", ({"rsi14": 70.1}, {}), {"rsi": "-0.20"}, Action.HOLD),
    ("close below the lower band buys", ({"close": 89.9}, {}), {"bollinger": "0.20"}, Action.HOLD),
    ("close on the lower band does not vote", ({"close": 90.0}, {}), {}, Action.HOLD),
    ("close on the upper band does not vote", ({"close": 110.0}, {}), {}, Action.HOLD),
    ("close above the upper band sells", ({"close": 110.5}, {}), {"bollinger": "-0.20"}, Action.HOLD),
    (
        "rsi and bollinger buy: 0.40",
        ({"rsi14": 20.0, "close": 89.0}, {}),
        {"rsi": "0.20", "bollinger": "0.20"},
        Action.BUY,
    ),
    (
        "rsi and bollinger sell: -0.40",
        ({"rsi14": 80.0, "close": 111.0}, {}),
        {"rsi": "-0.20", "bollinger": "-0.20"},
        Action.SELL,
    ),
    (
        "macd up and rsi buy: 0.45",
        combine(MACD_UP, ({"rsi14": 25.0}, {})),
        {"macd_cross": "0.25", "rsi": "0.20"},
        Action.BUY,
    ),
    (
        "ma up against rsi sell: 0.10",
        combine(MA_UP, ({"rsi14": 75.0}, {})),
        {"ma_cross": "0.30", "rsi": "-0.20"},
        Action.HOLD,
    ),
    (
        "ma up, rsi sell, bollinger buy: exactly 0.30",
        combine(MA_UP, ({"rsi14": 75.0, "close": 89.0}, {})),
        {"ma_cross": "0.30", "rsi": "-0.20", "bollinger": "0.20"},
        Action.BUY,
    ),
    (
        "macd up against bollinger sell: 0.05",
        combine(MACD_UP, ({"close": 111.0}, {})),
        {"macd_cross": "0.25", "bollinger": "-0.20"},
        Action.HOLD,
    ),
    (
        "all four buy: 0.95",
        combine(MA_UP, MACD_UP, ({"rsi14": 10.0, "close": 80.0}, {})),
        {"ma_cross": "0.30", "rsi": "0.20", "bollinger": "0.20", "macd_cross": "0.25"},
        Action.BUY,
    ),
    (
        "all four sell: -0.95",
        combine(MA_DOWN, MACD_DOWN, ({"rsi14": 90.0, "close": 120.0}, {})),
        {"ma_cross": "-0.30", "rsi": "-0.20", "bollinger": "-0.20", "macd_cross": "-0.25"},
        Action.SELL,
    ),
]


@pytest.mark.parametrize(("case", "values", "votes", "action"), RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_each_rule_votes_as_documented(case: str, values: tuple[dict, dict], votes: dict, action: Action) -> None:
    """Each rule's vote, the exact net and confidence, and the action at the default 0.30 threshold."""
    d, state = decide(reading(*values), CooldownState(), VoteParams())
    assert {v.rule: v.weight for v in d.votes} == {k: Decimal(w) for k, w in votes.items()}
    net = sum((Decimal(w) for w in votes.values()), Decimal(0))
    assert (d.net, d.confidence, d.action) == (net, abs(net), action)
    assert [v.reason for v in d.votes] == list(d.reasons[: len(d.votes)])
    assert (d.strategy, d.version) == (STRATEGY, VERSION) == ("ta-vote", 1)
    assert state == (
        CooldownState()
        if action is Action.HOLD
        else CooldownState(
            d.open_time if action is Action.BUY else None, d.open_time if action is Action.SELL else None
        )
    )


@pytest.mark.parametrize(
    ("threshold", "action"),
    [("0.45", Action.BUY), ("0.4500001", Action.HOLD), ("0.30", Action.BUY), ("0.46", Action.HOLD)],
)
def test_threshold_acts_at_and_not_below(threshold: str, action: Action) -> None:
    """A net vote of exactly the threshold acts; a hair below does not (exact decimals, no float drift)."""
    r = reading(*combine(MACD_UP, ({"rsi14": 25.0}, {})))  # 0.25 + 0.20
    assert decide(r, CooldownState(), VoteParams(threshold=Decimal(threshold)))[0].action is action


def test_reasons_are_what_the_user_reads() -> None:
    """Reasons name the rule, the direction and the values that made it vote, then why the action."""
    d, _ = decide(
        reading(
            {
                "sma20": 64010.2,
                "sma50": 63990.1,
                "rsi14": 27.44,
                "close": 63000.0,
                "bb_upper": 64500.0,
                "bb_lower": 63500.0,
                "bb_middle": 64000.0,
            },
            {"sma20": 63980.0, "sma50": 63990.0},
        ),
        CooldownState(),
        VoteParams(),
    )
    assert d.reasons == (
        "SMA20 crossed above SMA50 (64010.2 > 63990.1)",
        "RSI 27.4 < 30",
        "close 63000 below the lower Bollinger band 63500",
    )
    assert (d.action, d.confidence) == (Action.BUY, Decimal("0.70"))
    held, _ = decide(reading(*MACD_DOWN), CooldownState(), VoteParams())
    assert held.reasons == ("MACD crossed below its signal line (-1 < 0)", "net vote -0.25 is below the 0.30 threshold")
    assert held.indicators == dataclasses.asdict(NEUTRAL) | {"macd": -1.0}


BUY_NOW = reading(*MA_UP, minute=100)


@pytest.mark.parametrize(
    ("cooldown", "last_buy_minute", "last_sell_minute", "action"),
    [
        (15, 99, None, Action.HOLD),  # 1 candle after a BUY
        (15, 85, None, Action.HOLD),  # 15 candles after: still held back
        (15, 84, None, Action.BUY),  # 16 candles after: allowed
        (15, None, 99, Action.BUY),  # a SELL just before does not hold back a BUY
        (15, 40, 99, Action.BUY),
        (0, 99, None, Action.BUY),  # no cooldown
        (1, 99, None, Action.HOLD),
        (1, 98, None, Action.BUY),
    ],
)
def test_cooldown_holds_back_only_the_same_direction(
    cooldown: int, last_buy_minute: int | None, last_sell_minute: int | None, action: Action
) -> None:
    """A BUY within ``cooldown`` candles of the last BUY is held back (HOLD, state unchanged, reason given)."""
    at = {m: None if m is None else T0 + m * MINUTE for m in (last_buy_minute, last_sell_minute)}
    state = CooldownState(at[last_buy_minute], at[last_sell_minute])
    d, after = decide(BUY_NOW, state, VoteParams(cooldown=cooldown))
    assert d.action is action
    assert d.confidence == Decimal("0.30")  # the vote is kept even when held back
    if action is Action.HOLD:
        assert after == state
        assert d.reasons[-1] == (
            f"BUY held back by the cooldown: the last BUY was {100 - last_buy_minute} candles ago (cooldown {cooldown})"
        )
    else:
        assert after == CooldownState(BUY_NOW.open_time, state.last_sell)


def test_default_cooldown_is_fifteen_candles() -> None:
    """The documented default."""
    assert VoteParams().cooldown == 15


def test_state_not_before_the_candle_is_refused() -> None:
    """Deciding a candle with a cooldown state at or after it means the caller forgot to rewind."""
    with pytest.raises(ValueError, match="not before the candle"):
        decide(BUY_NOW, CooldownState(last_sell=BUY_NOW.open_time), VoteParams())


@pytest.mark.parametrize(
    ("candles", "prev", "action"),
    [
        (50, {}, Action.HOLD),  # fewer than 51 candles: warming up even with an MA cross
        (51, {}, Action.BUY),
        (1000, {"sma50": math.nan}, Action.HOLD),  # a previous value not defined yet
    ],
)
def test_no_signal_before_warm_up(candles: int, prev: dict, action: Action) -> None:
    """No BUY or SELL until every indicator is defined on the candle and the one before (51 candles)."""
    now, p = MA_UP
    d, state = decide(reading(now, p | prev, candles=candles), CooldownState(), VoteParams())
    assert d.action is action
    if action is Action.HOLD:
        assert d.reasons == (f"warming up: {candles} of 51 candles",)
        assert (d.votes, d.confidence, state) == ((), Decimal(0), CooldownState())


@pytest.mark.parametrize(
    "bad",
    [
        {"rsi_weight": Decimal("-0.1")},
        {"threshold": Decimal(0)},
        {"cooldown": -1},
        {"rsi_oversold": 70.0, "rsi_overbought": 30.0},
    ],
)
def test_nonsense_parameters_are_refused(bad: dict) -> None:
    """Negative weights or cooldown, a zero threshold, RSI levels the wrong way round."""
    with pytest.raises(ValueError, match="must be"):
        VoteParams(**bad)
