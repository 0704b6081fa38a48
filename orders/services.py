"""The trading pipeline's writes: a signal through the risk check to an executor, every step stored.

``act_on_signal`` is idempotent: the risk decision of a signal is stored once per mode (unique key), and acting
on it again (a restarted stream deciding the candle again, a retry) finds that decision and asks the executor
for the same orders, whose client ids are derived from the signal, so nothing is ever placed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError

from tradingsite.params import params_from_setting

from .executors.base import Entry, ExecutionError, Executor
from .ids import client_order_id, signal_key
from .models import Order, Position, RiskDecision
from .risk import Book, Proposal, Rejection, RiskParams, Verdict, assess, day_start
from .selectors import open_positions, realised_since

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SignalRef:
    """What the pipeline needs of a signal (a ``signals.rules.Decision`` or a stored ``Signal`` row)."""

    strategy: str
    exchange: str
    symbol: str
    interval: str
    open_time: datetime
    action: str
    atr: Decimal | None = None

    @classmethod
    def of(cls, decision: object) -> SignalRef:
        indicators = getattr(decision, "indicators", None) or {}
        atr = indicators.get("atr14") if isinstance(indicators, Mapping) else None
        open_time = getattr(decision, "open_time", None) or getattr(decision, "candle_open_time")  # noqa: B009
        action = getattr(decision, "action", None) or getattr(decision, "decision")  # noqa: B009
        return cls(
            decision.strategy,
            decision.exchange,
            decision.symbol,
            decision.interval,
            open_time,
            str(action),
            Decimal(str(atr)) if atr is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Acted:
    """A signal's risk decision and the position it opened or closed (None when rejected or nothing changed)."""

    decision: RiskDecision
    position: Position | None


def risk_params() -> RiskParams:
    """``settings.RISK_PARAMS`` as RiskParams; an empty value turns an optional rule off. A bad value is a
    ValueError naming the setting."""
    return params_from_setting(RiskParams, "RISK_PARAMS")


def account_book(executor: Executor, symbol: str, now: datetime, prices: Mapping[str, Decimal]) -> Book:
    """The account as the risk check sees it: the quote balance plus the open positions at their live (else
    last known) prices; the day's start equity is today's equity less today's PnL (realised today, and the open
    positions' unrealised PnL)."""
    cash = executor.cash(symbol)
    positions = open_positions(mode=executor.mode, exchange=executor.exchange)
    value, unrealised = Decimal(0), Decimal(0)
    for p in positions:
        mark = prices.get(p.symbol) or p.last_price or p.entry_price
        value += p.qty * mark
        unrealised += p.qty * (mark - p.entry_price) - p.fees
    equity = cash.total + value
    today = realised_since(mode=executor.mode, exchange=executor.exchange, since=day_start(now)) + unrealised
    held = sum((p.qty for p in positions if p.symbol == symbol), Decimal(0))
    return Book(
        equity=equity,
        available=cash.free,
        day_start_equity=equity - today,
        open_symbols=frozenset(p.symbol for p in positions),
        held=held,
    )


def _decision_row(
    ref: SignalRef,
    mode: str,
    verdict: Verdict,
    book: Book | None,
    price: Decimal | None,
    params: RiskParams,
    now: datetime,
) -> RiskDecision:
    inputs = {
        "params": {f.name: str(getattr(params, f.name)) for f in fields(RiskParams)},
        "atr": str(ref.atr) if ref.atr is not None else None,
        **verdict.figures,
    }
    if book is not None:
        inputs["open_symbols"] = sorted(book.open_symbols)
    row = RiskDecision(
        mode=mode,
        strategy=ref.strategy,
        exchange=ref.exchange,
        symbol=ref.symbol,
        interval=ref.interval,
        candle_open_time=ref.open_time,
        action=ref.action,
        approved=verdict.approved,
        rejection=str(verdict.rejection or ""),
        reasons=list(verdict.reasons),
        price=price,
        qty=verdict.qty,
        stop_price=verdict.stop_price,
        take_profit_price=verdict.take_profit_price,
        equity=book.equity if book else None,
        available=book.available if book else None,
        inputs=inputs,
        created_at=now,
    )
    try:
        row.save()
    except IntegrityError:  # decided before (by this process before a restart, or another): that one stands
        return _stored_decision(ref, mode) or row
    return row


def _stored_decision(ref: SignalRef, mode: str) -> RiskDecision | None:
    return RiskDecision.objects.filter(
        mode=mode,
        strategy=ref.strategy,
        exchange=ref.exchange,
        symbol=ref.symbol,
        interval=ref.interval,
        candle_open_time=ref.open_time,
    ).first()


def act_on_signal(
    signal: object, executor: Executor, *, price: Decimal | None, now: datetime, params: RiskParams | None = None
) -> Acted | None:
    """Check a BUY or SELL signal against the risk limits, store the decision, and have ``executor`` open or
    close the position. A HOLD is not acted on (None). Acting twice on one signal acts once."""
    ref = SignalRef.of(signal)
    if ref.action not in ("BUY", "SELL"):
        return None
    params = params or risk_params()
    decision = _stored_decision(ref, executor.mode)
    if decision is None:
        book: Book | None = None
        try:
            filters = executor.filters(ref.symbol)
            book = account_book(executor, ref.symbol, now, {ref.symbol: price} if price else {})
            verdict = assess(Proposal(ref.action, ref.symbol, price, ref.atr), book, filters, params)
        except ExecutionError as exc:  # the exchange refused or did not answer: no size can be worked out
            verdict = Verdict(False, Rejection.UNAVAILABLE, (f"nothing traded: {exc}",))
        decision = _decision_row(ref, executor.mode, verdict, book, price, params, now)
    if not decision.approved:
        return Acted(decision, None)
    if ref.action == "BUY":
        entry = Entry(
            decision,
            ref.exchange,
            ref.symbol,
            decision.qty,
            price or decision.price,
            decision.stop_price,
            decision.take_profit_price,
            client_order_id(
                signal_key(ref.strategy, ref.exchange, ref.symbol, ref.interval, ref.open_time, executor.mode), "entry"
            ),
        )
        return Acted(decision, executor.open(entry, now))
    positions = open_positions(mode=executor.mode, exchange=ref.exchange, symbol=ref.symbol)
    if not positions:
        return Acted(decision, None)  # closed meanwhile (its stop or take-profit): nothing left to sell
    return Acted(decision, executor.close(positions[0], Position.ExitReason.SIGNAL, now, price))


def position_close(*, executor: Executor, position: Position, now: datetime, price: Decimal | None = None) -> Position:
    """Close ``position`` by hand (the staff action)."""
    return executor.close(position, Position.ExitReason.MANUAL, now, price)


def order_cancel(*, executor: Executor, order: Order, now: datetime) -> Order:
    """Cancel an open order by hand (the staff action)."""
    return executor.cancel(order, now)
