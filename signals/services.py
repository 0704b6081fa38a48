"""Writes of signals: one per strategy and closed candle, idempotent.

``signals_store`` upserts through pymongo on the model's collection (django-mongodb-backend has no
``update_conflicts``), keyed by the unique (strategy, exchange, symbol, interval, candle_open_time): a candle
decided again (after a backfill rewrote it, or by a rerun) replaces its row, never adds one. Every key field is
a string or a date, the BSON types of the backend's partial unique index, so raw writes cannot escape it
(the ``int``/``long`` trap of ARCHITECTURE §5 concerns integer keys).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from decimal import Decimal

from bson import Decimal128
from django.conf import settings
from django.db import connection
from pymongo import UpdateOne

from markets.exchanges.errors import ExchangeError
from markets.exchanges.retry import RetryPolicy
from markets.intervals import floor, interval_delta
from orders.paper import PaperTerms
from orders.risk import RiskParams
from orders.selectors import instrument_filters
from orders.services import risk_params
from tradingsite.params import params_from_setting

from .backtest import DEFAULT_CASH, FALLBACK_FILTERS, BacktestResult, simulate
from .candles import ReplayCandles, replay_candles
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
    result = connection.database[Signal._meta.db_table].bulk_write(ops, ordered=False)
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


@dataclass(frozen=True, slots=True)
class BacktestRun:
    """A backtest's candles (range and warm-up), the strategy's decisions on the range and the paper result."""

    candles: ReplayCandles
    decisions: list[Decision]
    result: BacktestResult


def backtest_run(
    *,
    exchange: str,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    cash: Decimal = DEFAULT_CASH,
    fee: Decimal | None = None,
    slippage: Decimal | None = None,
    risk: Mapping[str, Decimal | None] | None = None,
    params: VoteParams | None = None,
    window: int = DEFAULT_WINDOW,
    on_pages: Callable[[int], None] | None = None,
    on_page: Callable[[int], None] | None = None,
) -> BacktestRun:
    """Replay ``[start, end)`` through the strategy, the risk check and paper fills (:mod:`signals.backtest`).

    The candles come through ``get_price_history`` (MongoDB first; what is missing is fetched from the exchange
    and stored), the decisions from :func:`signals.replay.replay` exactly as ``evaluate_stored`` makes them, but
    with the cooldown starting empty and nothing written to the signal or trading collections.

    Trading is configured as live paper trading: ``settings.PAPER_FEE`` and ``PAPER_SLIPPAGE`` unless ``fee`` or
    ``slippage`` are given (fractions), the risk limits of ``orders.services.risk_params()`` with ``risk``'s
    fields replacing theirs (``RiskParams`` field names, fractions), the risk check's fee allowance set to the
    fee charged, and the stored instrument's filters (:data:`signals.backtest.FALLBACK_FILTERS` when it is not
    stored). A bad setting or override is a ValueError naming it.
    """
    terms = PaperTerms(
        settings.PAPER_FEE if fee is None else fee, settings.PAPER_SLIPPAGE if slippage is None else slippage
    )
    unknown = sorted(set(risk or {}) - {f.name for f in fields(RiskParams)})
    if unknown:
        raise ValueError(f"unknown risk parameters {unknown}")
    limits = replace(risk_params(), **{**dict(risk or {}), "fee": terms.fee})
    candles = replay_candles(
        exchange=exchange,
        symbol=symbol,
        interval=interval,
        start=start,
        end=end,
        fetch=True,
        window=window,
        on_pages=on_pages,
        on_page=on_page,
    )
    filters = instrument_filters(exchange=exchange, symbol=symbol) or FALLBACK_FILTERS
    decisions = [d for d in replay(candles.bars, start=start, params=params, window=window) if d.open_time < end]
    result = simulate(candles.in_range, decisions, filters=filters, params=limits, terms=terms, cash=cash)
    return BacktestRun(candles, decisions, result)


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
    """The evaluator a live stream decides its next closed candles with: warmed with the closed candles of the
    window before ``now`` (MongoDB first; with ``fetch``, the exchange for what is missing, and MongoDB alone if
    the exchange fails) and given the signals stored within the cooldown, so that a restarted stream decides
    exactly as the one before it would have (and as ``evaluate_stored`` and a backtest do)."""
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
