"""Running a backtest over stored candles: the candles (MongoDB first, the exchange for what is missing), the
strategy's decisions (:func:`signals.replay.replay`, as ``signals.services.evaluate_stored`` makes them) and the
simulation through the risk check and paper fills (:func:`orders.backtest.simulate`).

It sits in ``orders`` because it joins the two: signals decide, the risk check and the paper arithmetic trade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from signals.candles import ReplayCandles, replay_candles
from signals.indicators import DEFAULT_WINDOW
from signals.replay import replay
from signals.rules import Decision, VoteParams

from .backtest import DEFAULT_CASH, FALLBACK_FILTERS, BacktestResult, simulate
from .paper import PaperTerms
from .risk import RiskParams
from .selectors import instrument_filters
from .services import risk_params


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
    """Replay ``[start, end)`` through the strategy, the risk check and paper fills (:mod:`orders.backtest`).

    The candles come through ``get_price_history`` (MongoDB first; what is missing is fetched from the exchange
    and stored), the decisions from :func:`signals.replay.replay` exactly as ``evaluate_stored`` makes them, but
    with the cooldown starting empty and nothing written to the signal or trading collections.

    Trading is configured as live paper trading: ``settings.PAPER_FEE`` and ``PAPER_SLIPPAGE`` unless ``fee`` or
    ``slippage`` are given (fractions), the risk limits of ``orders.services.risk_params()`` with ``risk``'s
    fields replacing theirs (``RiskParams`` field names, fractions), the risk check's fee allowance set to the
    fee charged, and the stored instrument's filters (:data:`orders.backtest.FALLBACK_FILTERS` when it is not
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
