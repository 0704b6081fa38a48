"""The executor interface: what the trading pipeline (orders/services.py) asks of paper and Binance alike.

An executor places the orders of an approved decision and keeps the database's Order, Fill and Position rows
equal to what happened. Its rules:

- every order is written (status PENDING, its client id derived from the signal) *before* it is sent, so that
  after a crash ``reconcile`` finds it and asks the exchange what became of it instead of sending it again;
- an entry that filled is protected (stop-loss and take-profit) before ``open`` returns; a position found
  without its protection by ``reconcile`` gets it then;
- a refusal of an entry (filters, balance, signature, timing) is an Order with status REJECTED and the exchange's
  reason, never an exception out of ``open``: the pipeline records it and goes on;
- a close is all or nothing: what can be checked is checked before anything is sent, and a close that cannot
  complete raises ExecutionError saying why, with the position still open and protected (its protection left
  working, or placed again).

Methods run on one thread at a time per executor (the stream's trading thread, or a request).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..ids import is_entry_id
from ..models import Order, Position, RiskDecision
from ..risk import Filters


class ExecutionError(Exception):
    """The executor cannot act at all (no filters for the symbol, the exchange unreachable for its account)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """An approved BUY to place: ``qty`` at about ``price``, protected at ``stop_price`` and
    ``take_profit_price``; ``client_order_id`` is derived from the signal (:mod:`orders.ids`)."""

    decision: RiskDecision
    exchange: str
    symbol: str
    qty: Decimal
    price: Decimal
    stop_price: Decimal
    take_profit_price: Decimal
    client_order_id: str


@dataclass(frozen=True, slots=True)
class Cash:
    """The quote asset's balance as the executor knows it: ``free`` to spend, ``total`` with what orders lock."""

    asset: str
    free: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class PricePoint:
    """One trade price of a symbol, in the order trades happened."""

    price: Decimal
    ts: datetime


def check_exit_id(position: Position) -> None:
    """An exit's client id derives from the position's entry id: one we did not make leaves the exit nameless, so
    the close is refused (ExecutionError) before anything changes."""
    entry_id = position.entry_client_order_id
    if not is_entry_id(entry_id):
        raise ExecutionError(
            f"the {position.symbol} position's entry order {entry_id!r} was not placed by this trader, so no exit "
            "order can be named after it: nothing was done, its protection stays; close it on the exchange"
        )


def finish_order(order: Order, status: str, now: datetime, *, reason: str = "") -> Order:
    """Store ``order``'s new status (and why, when given)."""
    order.status, order.updated_at = status, now
    if reason:
        order.reason = reason
    order.save(update_fields=["status", "updated_at", "reason"])
    return order


class Executor(ABC):
    """Places and watches orders in one mode (``paper``, ``testnet`` or ``live``) on one exchange."""

    mode: str
    exchange: str

    @abstractmethod
    def filters(self, symbol: str) -> Filters:
        """The symbol's trading filters (tick size, step size, minimum quantity and notional)."""

    @abstractmethod
    def cash(self, symbol: str) -> Cash:
        """The balance of ``symbol``'s quote asset."""

    @abstractmethod
    def open(self, entry: Entry, now: datetime) -> Position | None:
        """Place the entry and, once it filled, its protection. Returns the position, or None when the entry was
        rejected (its Order row says why). Acting twice on the same entry returns the same position."""

    @abstractmethod
    def close(self, position: Position, reason: str, now: datetime, price: Decimal | None = None) -> Position:
        """Close ``position`` now (``reason``: a Position.ExitReason): cancel its protection, sell what it holds.
        ``price`` is the live price where the executor needs one (paper). Returns the position (closed, possibly by
        its protection filling first); raises ExecutionError when the close cannot complete, leaving the position
        open and protected."""

    @abstractmethod
    def cancel(self, order: Order, now: datetime) -> Order:
        """Cancel an open order; cancelling a protective order leaves its position open (and unprotected) only
        until the next ``reconcile``, which protects it again."""

    @abstractmethod
    def watch(self, symbol: str, prices: Sequence[PricePoint], now: datetime) -> list[Position]:
        """The symbol's new trade prices, in order: settle the protective orders they reached (whichever of the
        stop-loss and the take-profit comes first closes the position). Returns the positions that changed."""

    @abstractmethod
    def reconcile(self, now: datetime) -> list[Order]:
        """After a restart: settle orders left PENDING, protect open positions left without protection.
        Returns the orders that changed."""
