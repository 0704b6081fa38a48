"""The paper executor: simulated fills at the live price, kept in the same Order, Fill and Position rows as real
ones. The default when no API keys are set.

- A MARKET order fills at once at the live price, with the slippage and fee of :mod:`orders.paper`.
- An open position is protected by a STOP_LOSS and a TAKE_PROFIT order (both SELL, status NEW). ``watch`` looks at
  every trade price in order: the first at or below the stop fills the stop-loss, the first at or above the
  take-profit fills the take-profit, at that trade's price with slippage and fee; the other order expires.
  Whichever comes first closes the position.
- Cash: ``PAPER_CASH`` plus the realised PnL of closed positions, less what open positions cost (fees included).
  Nothing is kept in memory: the rows are the account, so a restart carries on where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError

from ..ids import sibling_id
from ..models import Fill, Mode, Order, Position
from ..paper import PaperTerms, first_hit
from ..risk import Filters
from ..selectors import instrument_filters, instrument_quote, open_positions
from .base import Cash, Entry, ExecutionError, Executor, PricePoint, check_exit_id, finish_order

PROTECTIVE = (Order.Purpose.STOP_LOSS, Order.Purpose.TAKE_PROFIT)


class PaperExecutor(Executor):
    """Paper trading on ``exchange``'s live prices."""

    mode = Mode.PAPER

    def __init__(
        self, exchange: str, *, cash: Decimal | None = None, fee: Decimal | None = None, slippage: Decimal | None = None
    ) -> None:
        self.exchange = exchange
        self.start_cash = settings.PAPER_CASH if cash is None else cash
        self.terms = PaperTerms(
            settings.PAPER_FEE if fee is None else fee, settings.PAPER_SLIPPAGE if slippage is None else slippage
        )

    # -- account --------------------------------------------------------------------------------
    def filters(self, symbol: str) -> Filters:
        filters = instrument_filters(exchange=self.exchange, symbol=symbol)
        if filters is None:
            raise ExecutionError(f"{self.exchange}:{symbol} is not a stored instrument (run seed_instruments)")
        return filters

    def cash(self, symbol: str) -> Cash:
        positions = Position.objects.filter(mode=self.mode, exchange=self.exchange)
        total = self.start_cash
        for p in positions:
            if p.status == Position.Status.CLOSED:
                total += p.realised_pnl or Decimal(0)
            else:
                total -= p.qty * p.entry_price + p.fees
        return Cash(instrument_quote(exchange=self.exchange, symbol=symbol), total, total)

    # -- orders ---------------------------------------------------------------------------------
    def open(self, entry: Entry, now: datetime) -> Position | None:
        existing = Position.objects.filter(entry_client_order_id=entry.client_order_id).first()
        if existing is not None:
            return existing
        order = _order(
            entry.client_order_id,
            mode=self.mode,
            exchange=self.exchange,
            symbol=entry.symbol,
            side="BUY",
            type="MARKET",
            purpose=Order.Purpose.ENTRY,
            qty=entry.qty,
            risk_decision=entry.decision,
            now=now,
        )
        if not order.is_open:  # decided before: rejected then, or filled with its position lost to a crash
            return None if order.status == Order.Status.REJECTED else self._position_of(order, entry, now)
        price = self.terms.fill_price("BUY", entry.price)
        fee = self.terms.fee_of(entry.qty, price)
        cash = self.cash(entry.symbol).free
        if entry.qty * price + fee > cash:
            reason = (
                f"insufficient paper balance: {entry.qty} at {price} costs {entry.qty * price + fee} with the "
                f"fee, {cash} is free"
            )
            finish_order(order, Order.Status.REJECTED, now, reason=reason)
            return None
        _fill(order, price, fee, now)
        return self._position_of(order, entry, now)

    def _position_of(self, order: Order, entry: Entry, now: datetime) -> Position:
        """The position ``order`` (a filled entry) opened, created if missing, with its protection."""
        try:
            position, _ = Position.objects.get_or_create(
                entry_client_order_id=order.client_order_id,
                defaults={
                    "mode": self.mode,
                    "exchange": self.exchange,
                    "symbol": entry.symbol,
                    "qty": order.executed_qty,
                    "entry_price": order.avg_price,
                    "stop_price": entry.stop_price,
                    "take_profit_price": entry.take_profit_price,
                    "fees": order.fee,
                    "last_price": entry.price,
                    "unrealised_pnl": order.executed_qty * (entry.price - (order.avg_price or entry.price)) - order.fee,
                    "risk_decision": entry.decision,
                    "opened_at": now,
                    "updated_at": now,
                },
            )
        except IntegrityError:  # made by another process in between
            position = Position.objects.get(entry_client_order_id=order.client_order_id)
        Order.objects.filter(pk=order.pk, position=None).update(position=position)
        self._protect(position, now)
        return position

    def _protect(self, position: Position, now: datetime, attempt: int = 0) -> None:
        """Place the position's stop-loss and take-profit unless they are already working."""
        working = {
            o.purpose for o in Order.objects.filter(position=position, purpose__in=PROTECTIVE, status=Order.Status.NEW)
        }
        for purpose, stop in (
            (Order.Purpose.STOP_LOSS, position.stop_price),
            (Order.Purpose.TAKE_PROFIT, position.take_profit_price),
        ):
            if purpose in working:
                continue
            client_id = sibling_id(position.entry_client_order_id, str(purpose), attempt=attempt)
            order = _order(
                client_id,
                mode=self.mode,
                exchange=self.exchange,
                symbol=position.symbol,
                side="SELL",
                type="STOP_LOSS" if purpose == Order.Purpose.STOP_LOSS else "TAKE_PROFIT",
                purpose=purpose,
                qty=position.qty,
                stop_price=stop,
                position=position,
                risk_decision=position.risk_decision,
                now=now,
            )
            if order.status == Order.Status.PENDING:
                finish_order(order, Order.Status.NEW, now)
            elif order.status != Order.Status.NEW and attempt < 9:  # that id is spent (cancelled): a new one
                self._protect(position, now, attempt + 1)
                return

    def close(self, position: Position, reason: str, now: datetime, price: Decimal | None = None) -> Position:
        if position.status == Position.Status.CLOSED:
            return position
        check_exit_id(position)  # before the position is claimed and its protection cancelled
        if price is None:
            price = position.last_price
        if price is None:
            raise ExecutionError(f"no live price to close {position} at")
        return self._close(position, reason, price, now, None)

    def _close(
        self, position: Position, reason: str, price: Decimal, now: datetime, triggered: Order | None
    ) -> Position:
        """Sell the position at ``price`` (with slippage and fee): through its triggered protective order, or an
        exit order. The position is claimed with one conditional update, so it is never closed twice."""
        exit_price = self.terms.fill_price("SELL", price)
        fee, pnl = self.terms.exit_pnl(position.qty, position.entry_price, position.fees, exit_price)
        fees = position.fees + fee
        claimed = Position.objects.filter(pk=position.pk, status=Position.Status.OPEN).update(
            status=Position.Status.CLOSED,
            closed_at=now,
            exit_price=exit_price,
            exit_reason=reason,
            fees=fees,
            realised_pnl=pnl,
            last_price=price,
            unrealised_pnl=None,
            updated_at=now,
        )
        position.refresh_from_db()
        if not claimed:
            return position
        protective = Order.objects.filter(position=position, purpose__in=PROTECTIVE, status=Order.Status.NEW)
        if triggered is None:
            protective.update(status=Order.Status.CANCELED, reason=f"position closed ({reason})", updated_at=now)
            order = _order(
                sibling_id(position.entry_client_order_id, "exit"),
                mode=self.mode,
                exchange=self.exchange,
                symbol=position.symbol,
                side="SELL",
                type="MARKET",
                purpose=Order.Purpose.EXIT,
                qty=position.qty,
                position=position,
                risk_decision=position.risk_decision,
                now=now,
            )
        else:
            protective.exclude(pk=triggered.pk).update(
                status=Order.Status.EXPIRED,
                updated_at=now,
                reason=f"the {triggered.get_purpose_display()} filled first",
            )
            order = triggered
        _fill(order, exit_price, fee, now)
        return position

    def cancel(self, order: Order, now: datetime) -> Order:
        if not order.is_open:
            raise ExecutionError(f"order {order.client_order_id} is {order.status}: only open orders can be cancelled")
        finish_order(order, Order.Status.CANCELED, now, reason="cancelled by hand")
        return order

    def watch(self, symbol: str, prices: Sequence[PricePoint], now: datetime) -> list[Position]:
        if not prices:
            return []
        changed = []
        for position in open_positions(mode=self.mode, exchange=self.exchange, symbol=symbol):
            hit = first_hit(position.stop_price, position.take_profit_price, prices)
            if hit is not None:
                purpose, point = hit
                triggered = Order.objects.filter(position=position, purpose=purpose, status=Order.Status.NEW).first()
                changed.append(self._close(position, str(purpose), point.price, point.ts, triggered))
                continue
            last = prices[-1].price
            unrealised = position.qty * (last - position.entry_price) - position.fees
            Position.objects.filter(pk=position.pk, status=Position.Status.OPEN).update(
                last_price=last, unrealised_pnl=unrealised, updated_at=now
            )
            position.last_price, position.unrealised_pnl, position.updated_at = last, unrealised, now
            changed.append(position)
        return changed

    def reconcile(self, now: datetime) -> list[Order]:
        """Entries a crash left PENDING never filled (a paper fill is written with its order): rejected. Open
        positions get back missing protection; closed ones lose protection left working."""
        changed = []
        for order in Order.objects.filter(mode=self.mode, exchange=self.exchange, status=Order.Status.PENDING):
            if order.purpose == Order.Purpose.ENTRY:
                changed.append(finish_order(order, Order.Status.REJECTED, now, reason="interrupted before its fill"))
        for position in open_positions(mode=self.mode, exchange=self.exchange):
            self._protect(position, now)
        stale = Order.objects.filter(
            mode=self.mode,
            exchange=self.exchange,
            purpose__in=PROTECTIVE,
            status=Order.Status.NEW,
            position__status=Position.Status.CLOSED,
        )
        for order in stale:
            changed.append(finish_order(order, Order.Status.CANCELED, now, reason="its position is closed"))
        return changed


def _order(client_id: str, *, now: datetime, **fields: object) -> Order:
    """The order with ``client_id``: created PENDING, or the one stored before (an id is never used twice)."""
    try:
        order, _ = Order.objects.get_or_create(
            client_order_id=client_id, defaults={**fields, "created_at": now, "updated_at": now}
        )
    except IntegrityError:
        order = Order.objects.get(client_order_id=client_id)
    return order


def _fill(order: Order, price: Decimal, fee: Decimal, now: datetime) -> None:
    asset = instrument_quote(exchange=order.exchange, symbol=order.symbol) or "quote"
    Fill.objects.get_or_create(
        order=order,
        trade_id="paper-1",
        defaults={"price": price, "qty": order.qty, "fee": fee, "fee_asset": asset, "ts": now},
    )
    order.status, order.executed_qty, order.avg_price, order.fee, order.updated_at = (
        Order.Status.FILLED,
        order.qty,
        price,
        fee,
        now,
    )
    order.save(update_fields=["status", "executed_qty", "avg_price", "fee", "updated_at"])
