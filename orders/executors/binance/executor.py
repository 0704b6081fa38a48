"""The Binance executor: signed spot orders through python-binance's REST client (testnet unless told "live").

How it keeps the rows equal to the exchange (the rules of :mod:`orders.executors.base`, applied to Binance), in
layers, each a module of this package and each calling only those below it:

- :mod:`.account`: the signed client (:mod:`markets.exchanges.binance.client`: clock sync, errors as
  :class:`~markets.exchanges.errors.Refused` or :class:`~markets.exchanges.errors.OutcomeUnknown`), the symbols'
  filters, balances, commission rates and trades;
- :mod:`.records`: Binance's reports into Order, Fill and Position rows (one order per client id, written
  PENDING before it is sent; fees in the quote asset; realised PnL);
- :mod:`.submit`: the unknown-outcome rule (an order whose fate is unknown is looked up by its client id before
  it is ever sent again), entries and exits;
- :mod:`.protect`: one SELL OCO per open position;
- this module: the :class:`~orders.executors.base.Executor` interface on top.

- **Watching.** ``watch`` asks for the OCO's status when a trade crossed a level (at most once a second) and
  otherwise every 5 s; the leg that filled closes the position.
- **Closing is all or nothing.** Before anything is sent, ``close`` checks the exit can be named (an entry id of
  ours), the symbol's filters (minimum quantity and notional) and that the account holds the quantity; only then
  is the OCO cancelled and the position sold. An OCO that cannot be cancelled stays; an exit that Binance refuses
  puts the protection back at once; an exit whose outcome is unknown is left to ``reconcile`` (which protects the
  position again if it did not sell). Each of these is an ExecutionError saying so.
- **Secrets.** The key and secret go to python-binance and nowhere else. A stored or logged reason is the
  exchange's message with its code, or "timeout"/"connection error" with the method and path: never a URL (a
  GET's query carries the signature) nor a requests exception.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from markets.exchanges.binance.reports import balance
from markets.exchanges.errors import ExchangeError

from ...ids import sibling_id
from ...models import Order, Position
from ...selectors import open_positions
from ..base import Entry, ExecutionError, PricePoint, check_exit_id, finish_order
from .protect import Protection
from .records import PROTECTIVE, last_sent

log = logging.getLogger(__name__)

CHECK_EVERY = timedelta(seconds=5)  # protection of an open position asked about at least this often...
CHECK_CROSSED = timedelta(seconds=1)  # ...and at most this often while trades are past one of its levels


class BinanceExecutor(Protection):
    """Orders on Binance spot (``mode`` testnet or live), with their protection, through python-binance. Each
    argument left out is its setting (``BINANCE_REST_URL``, ``BINANCE_API_KEY``, ``TRADING_MODE``...)."""

    def __init__(
        self,
        *,
        rest_url: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        mode: str | None = None,
        timeout: float | None = None,
        recv_window_ms: int = 5000,
    ) -> None:
        super().__init__(
            rest_url=rest_url, key=key, secret=secret, mode=mode, timeout=timeout, recv_window_ms=recv_window_ms
        )
        self._checked: dict[Any, datetime] = {}  # position pk -> when its protection was last asked about

    def open(self, entry: Entry, now: datetime) -> Position | None:
        """The entry as a MARKET BUY, then its OCO; the position, or None when Binance refused the entry."""
        existing = Position.objects.filter(entry_client_order_id=entry.client_order_id).first()
        if existing is not None:
            return existing
        info = self._symbol(entry.symbol)
        self._ensure_clock()
        qty = info.filters.qty_down(entry.qty)
        row, created = self._claim(
            entry.client_order_id,
            now,
            symbol=entry.symbol,
            side="BUY",
            type="MARKET",
            purpose=Order.Purpose.ENTRY,
            qty=qty,
            risk_decision=entry.decision,
        )
        if row.status == Order.Status.PENDING:
            self._place(row, now, sent_at=None if created else last_sent(row))
        if row.executed_qty <= 0:
            return None
        position = self._open_position(row, entry.stop_price, entry.take_profit_price, now)
        self._protect(position, now)
        position.refresh_from_db()
        return position

    def close(self, position: Position, reason: str, now: datetime, price: Decimal | None = None) -> Position:
        """Checked, then the OCO cancelled and the position sold at market (``price`` is not needed here)."""
        position.refresh_from_db()
        if position.status == Position.Status.CLOSED:
            return position
        self._check_exit(position)
        self._settle_pending_protection(position, now)
        if position.status == Position.Status.OPEN and position.protection:
            self._cancel_list(position, now)  # raises while the OCO still protects it
        if position.status == Position.Status.CLOSED:
            return position  # a leg filled first
        closed = self._exit(position, reason, now)
        if closed.status == Position.Status.OPEN:
            self._exit_failed(closed, now)
        return closed

    def _check_exit(self, position: Position) -> None:
        """What a close needs, checked before anything is sent: an exit id (the entry's), the symbol's filters and
        Binance's clock, a quantity the filters take at the last price, and that much of the base asset held
        (free, or reserved by the position's own OCO). ExecutionError otherwise, nothing changed."""
        check_exit_id(position)
        info = self._symbol(position.symbol)
        self._ensure_clock()
        stays = "nothing was sent, its protection stays"
        filters, qty = info.filters, position.qty
        price = position.last_price or position.entry_price
        if qty < filters.min_qty:
            raise ExecutionError(f"{qty} {info.base} is below {position.symbol}'s minimum quantity: {stays}")
        if qty * price < filters.min_notional:
            raise ExecutionError(
                f"{qty} {info.base} at {price} is below {position.symbol}'s minimum notional "
                f"{filters.min_notional} {info.quote}: {stays}"
            )
        try:
            account = self.client.account()
        except ExchangeError as err:
            raise ExecutionError(f"the Binance account could not be read ({err.message}): {stays}") from None
        free = (balance(account, info.base) or (Decimal(0), Decimal(0)))[0]
        reserved = Decimal(0)
        if position.protection:
            legs = Order.objects.filter(
                position=position, purpose=Order.Purpose.STOP_LOSS, order_list_id=int(position.protection)
            )
            reserved = max((o.qty for o in legs if o.is_open), default=Decimal(0))
        if free + reserved < qty:
            raise ExecutionError(
                f"the account holds {free + reserved} {info.base} for the position ({free} free, {reserved} "
                f"reserved by its protection), less than its {qty}: {stays}"
            )

    def _exit_failed(self, position: Position, now: datetime) -> None:
        """The exit did not sell ``position`` (its OCO cancelled already): refused, the protection is placed again
        at once; unknown, ``reconcile`` settles it first. Raises ExecutionError saying which."""
        row = Order.objects.filter(client_order_id=sibling_id(position.entry_client_order_id, "exit")).first()
        why = row.reason if row is not None and row.reason else "no answer"
        if row is not None and row.status == Order.Status.REJECTED:
            self._protect(position, now)
            position.refresh_from_db()
            if position.status == Position.Status.CLOSED:
                return
            again = (
                "its protection was placed again"
                if position.protection
                else "its protection could not be placed again yet: the next reconcile does"
            )
            raise ExecutionError(f"Binance refused the exit of the {position.symbol} position ({why}); {again}")
        raise ExecutionError(
            f"the exit of the {position.symbol} position is not settled ({why}): the next reconcile settles it, and "
            "protects the position again if it did not sell"
        )

    def cancel(self, order: Order, now: datetime) -> Order:
        """Cancel an open order; a leg of an OCO cancels the whole OCO (``reconcile`` protects it again)."""
        if not order.is_open:
            raise ExecutionError(f"order {order.client_order_id} is {order.status}: only open orders can be cancelled")
        if order.purpose in PROTECTIVE and order.position is not None:
            position = order.position
            self._settle_pending_protection(position, now)
            if position.protection:
                self._cancel_list(position, now)
        else:
            self._cancel_single(order, now)
        order.refresh_from_db()
        if order.status == Order.Status.CANCELED and not order.reason:
            finish_order(order, Order.Status.CANCELED, now, reason="cancelled by hand")
        return order

    def watch(self, symbol: str, prices: Sequence[PricePoint], now: datetime) -> list[Position]:
        """Ask about the OCOs of ``symbol``'s positions when due, and mark them at the last price."""
        changed = []
        for position in open_positions(mode=self.mode, exchange=self.exchange, symbol=symbol):
            if position.protection and self._due(position, prices, now):
                self._checked[position.pk] = now
                self._check_list(position, now)
                if position.status == Position.Status.CLOSED:
                    self._checked.pop(position.pk, None)
                    changed.append(position)
                    continue
            if prices:
                last = prices[-1].price
                position.last_price = last
                position.unrealised_pnl = position.qty * (last - position.entry_price) - position.fees
                position.updated_at = now
                Position.objects.filter(pk=position.pk, status=Position.Status.OPEN).update(
                    last_price=last, unrealised_pnl=position.unrealised_pnl, updated_at=now
                )
                changed.append(position)
        return changed

    def reconcile(self, now: datetime) -> list[Order]:
        """PENDING entries and exits are looked up and settled (never reached the exchange: REJECTED); a filled
        entry without its position gets it; open positions have their protection checked (a leg may have filled
        while we were away), settled if its placement went unanswered, and placed again when it is gone. Returns
        the orders changed, found by their ``updated_at`` (every change here stamps ``now``)."""
        mine = Order.objects.filter(mode=self.mode, exchange=self.exchange)
        for row in mine.filter(
            status=Order.Status.PENDING, purpose__in=(Order.Purpose.ENTRY, Order.Purpose.EXIT)
        ).order_by("created_at"):
            self._reconcile_single(row, now)
        for row in mine.filter(purpose=Order.Purpose.ENTRY, executed_qty__gt=0, position=None):
            self._position_of(row, now)
        for position in open_positions(mode=self.mode, exchange=self.exchange):
            self._settle_pending_protection(position, now)
            if position.status == Position.Status.OPEN and position.protection:
                self._check_list(position, now)
            if position.status == Position.Status.OPEN and not position.protection:
                self._protect(position, now)
        return list(mine.filter(updated_at__gte=now).order_by("created_at"))

    def _position_of(self, row: Order, now: datetime) -> None:
        """``reconcile``: the position of a filled entry found without one, protected; its levels are the risk
        decision's."""
        decision = row.risk_decision
        if decision is None or decision.stop_price is None or decision.take_profit_price is None:
            log.error(
                "%s %s filled without a risk decision to protect it by: left alone", self.mode, row.client_order_id
            )
            return
        position = self._open_position(row, decision.stop_price, decision.take_profit_price, now)
        if position.status == Position.Status.OPEN and not position.protection:
            self._protect(position, now)

    def _due(self, position: Position, prices: Sequence[PricePoint], now: datetime) -> bool:
        """Whether ``position``'s OCO should be asked about now: every 5 s, every second once a level is crossed."""
        last = self._checked.get(position.pk)
        crossed = any(p.price <= position.stop_price or p.price >= position.take_profit_price for p in prices)
        return last is None or now - last >= (CHECK_CROSSED if crossed else CHECK_EVERY)
