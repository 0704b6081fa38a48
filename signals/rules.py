"""The "ta-vote" strategy, version 1: a weighted vote of four rules on one closed candle. Pure: no Django.

Each rule looks at the newest closed candle (``Reading.now``) and, for the crosses, the candle before it
(``Reading.prev``, from the same computation) and votes ``+weight`` (buy), ``-weight`` (sell) or nothing:

- **MA cross** (0.30, trend-following): with ``d = SMA20 - SMA50``, buy when ``d_prev <= 0 < d_now`` (SMA20
  crossed above SMA50: it is above now and was not before), sell when ``d_prev >= 0 > d_now``.
- **MACD cross** (0.25, trend-following): the same sign change of ``MACD - signal line`` (the histogram).
- **RSI** (0.20, mean-reversion, level variant): buy while ``RSI14 < 30`` (oversold), sell while
  ``RSI14 > 70`` (overbought); strict, so 30 and 70 themselves do not vote.
- **Bollinger** (0.20, mean-reversion): buy when the close is strictly below the lower band, sell when
  strictly above the upper band. Mean-reversion rather than breakout because the RSI rule reads the same
  stretch the same way: a close above the upper band nearly always comes with a high RSI, so a breakout
  reading would mostly cancel the RSI vote instead of confirming it.

The net vote is the exact (``Decimal``) sum of the votes; its absolute value is the ``confidence`` (at
most 0.95 with the default weights). The decision is BUY (net > 0) or SELL (net < 0) when the
confidence is at least the threshold (0.30), else HOLD. So one MA cross acts alone, a MACD cross needs
one more agreeing rule, and RSI plus Bollinger act together.

A flat window (every close equal, e.g. quiet synthetic candles) has RSI 0 by TA-Lib's convention, so RSI
votes buy; nothing else votes there (no cross, the close sits on both collapsed bands), and 0.20 alone is
HOLD.

**Cooldown**: a BUY (SELL) is held back, as HOLD with its vote kept and the reason added, iff
``elapsed = (t - t_last) // interval`` ≤ ``cooldown``, ``t_last`` being the last BUY (SELL) emitted: with
the default 15, a BUY at minute 0 holds back BUYs at minutes 1–15 and the next may come at minute 16. A
signal held back does not restart the cooldown; the opposite direction is never held back (a SELL may
follow a BUY at once, as an exit must); ``cooldown = 0`` disables it. Why 15: after a cross, SMA20 and
SMA50 (and MACD and its signal) often re-cross back and forth for a few to a dozen candles (whipsaw);
15 candles absorbs that burst. On seeded 2,000-candle random walks 4.8–5.6 % of candles signal without a
cooldown and 2.8–3.5 % with 15.

**Warm-up**: no signal until every indicator is defined on the newest candle and the one before
(:data:`signals.indicators.MIN_WINDOW` = 51 candles: SMA50 plus one previous value for the cross).

:func:`decide` is pure: the cooldown's memory is a :class:`CooldownState` passed in (the last BUY and SELL
emitted before this candle) and the next state returned, so a restarted process restores it from the
signals it stored and a backtest starts it empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from markets.intervals import interval_delta

from .indicators import MIN_WINDOW, Reading

STRATEGY = "ta-vote"
VERSION = 1


class Action(StrEnum):
    """What the strategy says about one closed candle."""

    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


@dataclass(frozen=True, slots=True)
class VoteParams:
    """The strategy's parameters (weights and threshold as exact decimals; cooldown in candles)."""

    ma_cross_weight: Decimal = Decimal("0.30")
    rsi_weight: Decimal = Decimal("0.20")
    bollinger_weight: Decimal = Decimal("0.20")
    macd_cross_weight: Decimal = Decimal("0.25")
    rsi_oversold: float = 30.0
    rsi_overbought: float = 70.0
    threshold: Decimal = Decimal("0.30")
    cooldown: int = 15

    def __post_init__(self) -> None:
        weights = (self.ma_cross_weight, self.rsi_weight, self.bollinger_weight, self.macd_cross_weight)
        if min(weights) < 0 or self.threshold <= 0 or self.cooldown < 0:
            raise ValueError("weights must be ≥ 0, the threshold > 0 and the cooldown ≥ 0 candles")
        if not self.rsi_oversold < self.rsi_overbought:
            raise ValueError("rsi_oversold must be below rsi_overbought")


@dataclass(frozen=True, slots=True)
class Vote:
    """One rule's vote: ``weight`` is signed (+ buy, - sell); ``reason`` is what the user reads."""

    rule: str
    weight: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class CooldownState:
    """The open times of the last BUY and the last SELL emitted (before the candle being decided)."""

    last_buy: datetime | None = None
    last_sell: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The strategy's answer for one closed candle, with everything needed to explain and store it.

    ``net`` is the signed sum of ``votes``, ``confidence`` its absolute value; ``indicators`` are the
    candle's values (``None`` where not defined yet); ``reasons`` are the votes' reasons followed by why
    the action is what it is.
    """

    strategy: str
    version: int
    exchange: str
    symbol: str
    interval: str
    open_time: datetime
    action: Action
    confidence: Decimal
    net: Decimal
    votes: tuple[Vote, ...]
    reasons: tuple[str, ...]
    indicators: dict[str, float | None]


def fmt(x: float) -> str:
    """A value as a user reads it: up to 8 significant digits (64010.2, 27.4, 0.00012345)."""
    return f"{x:.8g}"


def _cross(d_prev: float, d_now: float) -> int:
    """+1 when ``d`` turned positive (was ≤ 0), -1 when it turned negative (was ≥ 0), else 0."""
    if d_prev <= 0 < d_now:
        return 1
    if d_prev >= 0 > d_now:
        return -1
    return 0


def ma_cross_vote(r: Reading, p: VoteParams) -> Vote | None:
    """SMA20 crossing SMA50 between the previous and the newest candle (see the module docstring)."""
    now = r.now
    side = _cross(r.prev.sma20 - r.prev.sma50, now.sma20 - now.sma50)
    if side == 0:
        return None
    word, op = ("above", ">") if side > 0 else ("below", "<")
    reason = f"SMA20 crossed {word} SMA50 ({fmt(now.sma20)} {op} {fmt(now.sma50)})"
    return Vote("ma_cross", side * p.ma_cross_weight, reason)


def macd_cross_vote(r: Reading, p: VoteParams) -> Vote | None:
    """MACD crossing its signal line between the previous and the newest candle."""
    now = r.now
    side = _cross(r.prev.macd - r.prev.macd_signal, now.macd - now.macd_signal)
    if side == 0:
        return None
    word, op = ("above", ">") if side > 0 else ("below", "<")
    reason = f"MACD crossed {word} its signal line ({fmt(now.macd)} {op} {fmt(now.macd_signal)})"
    return Vote("macd_cross", side * p.macd_cross_weight, reason)


def rsi_vote(r: Reading, p: VoteParams) -> Vote | None:
    """RSI14 strictly below the oversold level buys, strictly above the overbought level sells."""
    rsi = r.now.rsi14
    if rsi < p.rsi_oversold:
        return Vote("rsi", p.rsi_weight, f"RSI {rsi:.1f} < {p.rsi_oversold:g}")
    if rsi > p.rsi_overbought:
        return Vote("rsi", -p.rsi_weight, f"RSI {rsi:.1f} > {p.rsi_overbought:g}")
    return None


def bollinger_vote(r: Reading, p: VoteParams) -> Vote | None:
    """A close strictly below the lower band buys, strictly above the upper band sells."""
    now = r.now
    if now.close < now.bb_lower:
        return Vote(
            "bollinger",
            p.bollinger_weight,
            f"close {fmt(now.close)} below the lower Bollinger band {fmt(now.bb_lower)}",
        )
    if now.close > now.bb_upper:
        return Vote(
            "bollinger",
            -p.bollinger_weight,
            f"close {fmt(now.close)} above the upper Bollinger band {fmt(now.bb_upper)}",
        )
    return None


RULES = (ma_cross_vote, rsi_vote, bollinger_vote, macd_cross_vote)


def warmed_up(r: Reading) -> bool:
    """Every indicator defined on the newest candle and the one before it."""
    return r.candles >= MIN_WINDOW and not any(math.isnan(v) for v in (*_fields(r.now), *_fields(r.prev)))


def decide(r: Reading, state: CooldownState, params: VoteParams) -> tuple[Decision, CooldownState]:
    """The decision for the candle of ``r`` and the cooldown state after it.

    ``state`` must hold only signals before this candle (ValueError otherwise: rewind it first).
    """
    last = {Action.BUY: state.last_buy, Action.SELL: state.last_sell}
    if any(t is not None and t >= r.open_time for t in last.values()):
        raise ValueError(f"cooldown state {state} is not before the candle {r.open_time.isoformat()}")
    if not warmed_up(r):
        why = f"warming up: {r.candles} of {MIN_WINDOW} candles"
        return _decision(r, Action.HOLD, (), (why,)), state
    votes = tuple(v for rule in RULES if (v := rule(r, params)) is not None)
    net = sum((v.weight for v in votes), Decimal(0))
    reasons = [v.reason for v in votes]
    if abs(net) < params.threshold:
        reasons.append(f"net vote {net:+} is below the {params.threshold} threshold")
        return _decision(r, Action.HOLD, votes, tuple(reasons)), state
    action = Action.BUY if net > 0 else Action.SELL
    since = last[action]
    if since is not None:
        elapsed = (r.open_time - since) // interval_delta(r.interval)
        if elapsed <= params.cooldown:
            reasons.append(
                f"{action} held back by the cooldown: the last {action} was {elapsed} candles ago "
                f"(cooldown {params.cooldown})"
            )
            return _decision(r, Action.HOLD, votes, tuple(reasons)), state
    after = (
        CooldownState(r.open_time, state.last_sell)
        if action is Action.BUY
        else CooldownState(state.last_buy, r.open_time)
    )
    return _decision(r, action, votes, tuple(reasons)), after


def _fields(v: object) -> tuple[float, ...]:
    return tuple(getattr(v, name) for name in v.__slots__)  # type: ignore[attr-defined]


def _decision(r: Reading, action: Action, votes: tuple[Vote, ...], reasons: tuple[str, ...]) -> Decision:
    net = sum((v.weight for v in votes), Decimal(0))
    return Decision(
        STRATEGY,
        VERSION,
        r.exchange,
        r.symbol,
        r.interval,
        r.open_time,
        action,
        abs(net),
        net,
        votes,
        reasons,
        r.now.as_dict(),
    )
