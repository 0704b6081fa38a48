"""Writes of signals: one per strategy and closed candle, idempotent; the decisions of stored candles
(``evaluate_stored``); the evaluator a stream's signal listener decides with (``live_evaluator``); the strategy's
configured parameters. The backtest, which trades decisions through the risk check, is ``orders.backtest_run``.

``signals_store`` upserts through pymongo on the model's collection (django-mongodb-backend has no
``update_conflicts``), keyed by the unique (strategy, exchange, symbol, interval, candle_open_time): a candle
decided again (after a backfill rewrote it, or by a rerun) replaces its row, never adds one. Every key field is
a string or a date, the BSON types of the backend's partial unique index, so raw writes cannot escape it
(the ``int``/``long`` trap of ARCHITECTURE §5 concerns integer keys).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from bson import Decimal128
from pymongo import UpdateOne

from markets.exchanges.errors import ExchangeError
from markets.exchanges.retry import RetryPolicy
from markets.intervals import floor, interval_delta
from markets.store import collection
from tradingsite.params import params_from_setting

from .candles import replay_candles
from .evaluator import Evaluator
from .indicators import DEFAULT_WINDOW
from .models import Signal
from .replay import replay
from .rules import Decision, VoteParams
from .selectors import signals_before

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoreResult:
    """How many decisions were new rows, and how many replaced a stored one."""

    created: int
    replaced: int


def signal_key(d: Decision) -> dict[str, object]:
    """The unique key of a decision's row."""
    return {
        "strategy": d.strategy,
        "exchange": d.exchange,
        "symbol": d.symbol,
        "interval": d.interval,
        "candle_open_time": d.open_time,
    }


def signal_doc(d: Decision) -> dict[str, object]:
    """The stored fields of a decision, but the times of the write (exact decimals as Decimal128)."""
    return {
        **signal_key(d),
        "version": d.version,
        "decision": str(d.action),
        "confidence": Decimal128(d.confidence),
        "net": Decimal128(d.net),
        "indicators": dict(d.indicators),
        "votes": [{"rule": v.rule, "weight": str(v.weight), "reason": v.reason} for v in d.votes],
        "reasons": list(d.reasons),
    }


def signals_store(*, decisions: Iterable[Decision], now: datetime | None = None) -> StoreResult:
    """Insert or replace the row of each decision (the last one wins when a candle appears twice)."""
    now = now or datetime.now(UTC)
    latest = {tuple(signal_key(d).values()): d for d in decisions}
    ops = [
        UpdateOne(
            signal_key(d),
            {"$set": {**signal_doc(d), "updated_at": now}, "$setOnInsert": {"created_at": now}},
            upsert=True,
        )
        for d in latest.values()
    ]
    if not ops:
        return StoreResult(0, 0)
    result = collection(Signal).bulk_write(ops, ordered=False)
    return StoreResult(result.upserted_count, len(ops) - result.upserted_count)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The decisions of an ``evaluate_stored`` run (oldest first), how they were stored, and the warm-up."""

    decisions: list[Decision]
    stored: StoreResult
    warm_up: int


def evaluate_stored(
    *,
    exchange: str,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    params: VoteParams | None = None,
    window: int = DEFAULT_WINDOW,
    fetch: bool = False,
    policy: RetryPolicy | None = None,
) -> Evaluation:
    """Decide the stored closed candles of ``[start, end)`` and store the decisions (idempotently).

    The evaluator is warmed from the stored candles of the ``window - 1`` intervals before ``start``
    (:mod:`signals.replay`) and given the BUY/SELL signals stored before ``start``, so the cooldown carries on
    as in the live stream that stored them. After a backfill, recompute up to the newest candle: a changed
    signal moves the cooldown of the candles after it. ``fetch=True`` first fetches missing candles from the
    exchange. Raises :class:`markets.history.InvalidRequest` naming a bad argument.
    """
    params = params or configured_params()
    candles = replay_candles(
        exchange=exchange,
        symbol=symbol,
        interval=interval,
        start=start,
        end=end,
        fetch=fetch,
        window=window,
        policy=policy,
    )
    since = start - (params.cooldown + 1) * interval_delta(interval)  # older signals no longer hold anything back
    earlier = signals_before(exchange=exchange, symbol=symbol, interval=interval, since=since, before=start)
    decisions = [
        d for d in replay(candles.bars, start=start, params=params, window=window, signals=earlier) if d.open_time < end
    ]
    return Evaluation(decisions, signals_store(decisions=decisions), candles.warm_up)


def configured_params() -> VoteParams:
    """The strategy's parameters from ``settings.SIGNAL_PARAMS`` (weights and threshold exact decimals, RSI
    levels numbers, the cooldown whole candles); a bad value is a ValueError naming the setting."""
    return params_from_setting(VoteParams, "SIGNAL_PARAMS")


WARM_POLICY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=1.0)


def live_evaluator(
    *,
    exchange: str,
    symbol: str,
    interval: str = "1m",
    now: datetime,
    params: VoteParams | None = None,
    window: int = DEFAULT_WINDOW,
    fetch: bool = True,
) -> Evaluator:
    """The evaluator the signal listener decides a live stream's next closed candles with: warmed with the
    closed candles of the window before ``now`` (MongoDB first; with ``fetch``, the exchange for what is missing,
    and MongoDB alone if the exchange fails) and given the signals stored within the cooldown, so that a restarted
    stream decides exactly as the one before it would have (and as ``evaluate_stored`` and a backtest do)."""
    params = params or configured_params()
    start = floor(now, interval)
    try:  # a quick try only: the stream waits for this before opening its socket
        candles = replay_candles(
            exchange=exchange,
            symbol=symbol,
            interval=interval,
            start=start,
            end=start + interval_delta(interval),
            fetch=fetch,
            window=window,
            policy=WARM_POLICY,
        )
    except ExchangeError as exc:
        log.warning("%s %s: warming the signals from storage only (%s)", exchange, symbol, exc)
        candles = replay_candles(
            exchange=exchange,
            symbol=symbol,
            interval=interval,
            start=start,
            end=start + interval_delta(interval),
            fetch=False,
            window=window,
        )
    since = start - (params.cooldown + 1) * interval_delta(interval)
    earlier = signals_before(exchange=exchange, symbol=symbol, interval=interval, since=since, before=start)
    evaluator = Evaluator(exchange, symbol, interval, params=params, window=window, signals=earlier)
    evaluator.warm(b for b in candles.bars if b.closed and b.open_time < start)
    return evaluator
