"""The trading records' writes: a signal through the risk check to an executor, every step stored; and the staff
actions (close a position, cancel an order) that the live page's buttons and the admin's actions both call.

``act_on_signal`` is idempotent: the risk decision of a signal is stored once per mode (unique key), and acting
on it again (a restarted stream deciding the candle again, a retry) finds that decision and asks the executor
for the same orders, whose client ids are derived from the signal, so nothing is ever placed twice.

A staff action goes through the executor of the record's mode and is all or nothing: one that is not done raises
:class:`ActionRefused` with the HTTP status that says why (409: the record cannot be acted on, or the executor
refused; 503: no executor for its mode here, Binance keys unset; 502: the exchange failed). What a staff action
changed is pushed to every live page (``orders.update`` on ``ORDERS_GROUP``, built by :mod:`orders.live`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import IntegrityError

from markets.exchanges.errors import ExchangeError
from markets.selectors import recent_ticks
from tradingsite.params import params_from_setting

from .executors import executor_of
from .executors.base import Entry, ExecutionError, Executor
from .ids import client_order_id, signal_key
from .live import ORDERS_GROUP, orders_update
from .models import Mode, Order, Position, RiskDecision
from .risk import Book, Proposal, Rejection, RiskParams, Verdict, assess, day_start
from .selectors import open_positions, position_orders, realised_since

log = logging.getLogger(__name__)
T = TypeVar("T")


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


# -- staff actions -----------------------------------------------------------------------------------------------


class ActionRefused(Exception):
    """A staff action that was not done: ``status`` is the HTTP status that says why, ``detail`` the reason."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


def close_price(position: Position) -> Decimal | None:
    """The price a paper position is closed at by hand: its last price, else its symbol's last stored trade."""
    if position.last_price is not None:
        return position.last_price
    last = recent_ticks(exchange=position.exchange, symbol=position.symbol, limit=1)
    return last[0].price if last else None


def staff_close(position: Position, *, now: datetime) -> Position:
    """Close ``position`` by hand through its mode's executor, or raise ActionRefused saying why not."""
    if position.status != Position.Status.OPEN:
        reason = f" ({position.get_exit_reason_display()})" if position.exit_reason else ""
        raise ActionRefused(409, "conflict", f"the {position.symbol} position is already closed{reason}")
    executor = _executor(position.mode, position.exchange)
    price = None
    if position.mode == Mode.PAPER:
        price = close_price(position)
        if price is None:
            raise ActionRefused(
                409,
                "conflict",
                f"no price to close the paper {position.symbol} position at: it has no "
                f"last price and no {position.exchange} trade of {position.symbol} is stored",
            )
    return _act(lambda: position_close(executor=executor, position=position, now=now, price=price))


def staff_cancel(order: Order, *, now: datetime) -> Order:
    """Cancel an open order by hand through its mode's executor, or raise ActionRefused saying why not."""
    if not order.is_open:
        raise ActionRefused(
            409,
            "conflict",
            f"order {order.client_order_id} is {order.status}: only open orders "
            "(PENDING, NEW, PARTIALLY_FILLED) can be cancelled",
        )
    executor = _executor(order.mode, order.exchange)
    return _act(lambda: order_cancel(executor=executor, order=order, now=now))


def positions_announce(positions: Iterable[Position]) -> tuple[list[Position], list[Order]]:
    """Push ``positions`` (closed by staff) with their orders to every live page; returns what was pushed."""
    positions = list(positions)
    orders = [o for p in positions for o in position_orders(p)]
    _announce(positions, orders)
    return positions, orders


def orders_announce(orders: Iterable[Order]) -> tuple[list[Position], list[Order]]:
    """Push ``orders`` (cancelled by staff) with their positions to every live page; returns what was pushed."""
    orders = list(orders)
    pks = {o.position_id for o in orders if o.position_id}
    positions = list(Position.objects.filter(pk__in=pks)) if pks else []
    _announce(positions, orders)
    return positions, orders


def _announce(positions: list[Position], orders: list[Order]) -> None:
    """A channel layer that fails is logged, never raised: the action is done and stored, and the pages catch up
    on their next snapshot."""
    try:
        async_to_sync(get_channel_layer().group_send)(ORDERS_GROUP, orders_update(positions, orders))
    except Exception as exc:  # Redis down: the action stands
        log.warning("the live pages were not told of a staff action: %r", exc)


def _executor(mode: str, exchange: str) -> Executor:
    try:
        return executor_of(mode, exchange)
    except ExecutionError as exc:
        raise ActionRefused(503, "unavailable", str(exc)) from exc


def _act(action: Callable[[], T]) -> T:
    try:
        return action()
    except ExecutionError as exc:
        raise ActionRefused(409, "conflict", str(exc)) from exc
    except ExchangeError as exc:
        log.warning("a staff action failed on the exchange: %s", exc)
        raise ActionRefused(
            502, "exchange error", f"{exc.exchange}: the exchange failed or refused; see the log"
        ) from exc
