"""The Binance executor's rows: Binance's reports written into Order, Fill and Position rows, once each.

- **One order per id.** Every order carries the client id derived from its signal (:mod:`orders.ids`) and is
  written PENDING (:meth:`Records._claim`) before it is sent.
- **Money.** A position holds what the entry bought less base-asset fees, rounded down to the step; realised
  PnL = exit proceeds − the position's cost at its entry price − every fee.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError

from markets.exchanges.binance.reports import OrderReport

from ...models import Fill, Order, Position
from .account import Account, SymbolInfo

log = logging.getLogger(__name__)

PROTECTIVE = (Order.Purpose.STOP_LOSS, Order.Purpose.TAKE_PROFIT)
STATUSES = {"EXPIRED_IN_MATCH": Order.Status.EXPIRED, "PENDING_CANCEL": Order.Status.CANCELED}  # Binance's others


class Records(Account):
    """Reports into rows: orders claimed and updated, their fills and fees, positions opened and closed."""

    def _claim(self, client_id: str, now: datetime, **fields: Any) -> tuple[Order, bool]:
        """The order with ``client_id``: created PENDING (True), or the one stored before (False)."""
        try:
            return Order.objects.get_or_create(
                client_order_id=client_id,
                defaults={"mode": self.mode, "exchange": self.exchange, **fields, "created_at": now, "updated_at": now},
            )
        except IntegrityError:  # made by another process in between
            return Order.objects.get(client_order_id=client_id), False

    def _apply(self, row: Order, report: OrderReport, now: datetime) -> None:
        """Binance's report of ``row`` (a placement, query or cancel answer) into the row and its fills."""
        row.exchange_order_id = report.order_id
        if report.list_id is not None:
            row.order_list_id = report.list_id
        status = report.status or (Order.Status.NEW if row.status == Order.Status.PENDING else row.status)
        row.status = STATUSES.get(status, status)
        if report.executed_qty is not None:
            row.executed_qty = report.executed_qty
            row.avg_price = report.avg_price
            if report.executed_qty > 0:
                self._record_fills(row, report, now)
        row.updated_at = now
        row.save(
            update_fields=[
                "exchange_order_id",
                "order_list_id",
                "status",
                "executed_qty",
                "avg_price",
                "fee",
                "updated_at",
            ]
        )

    def _record_fills(self, row: Order, report: OrderReport, now: datetime) -> None:
        """The order's fills (from the answer, else ``/api/v3/myTrades``) and its fee in the quote asset."""
        recorded = list(row.fills.all())
        if sum((f.qty for f in recorded), Decimal(0)) < row.executed_qty:
            fills = list(report.fills) or self._trades(row, report)
            ts = report.time or now
            for f in fills:
                Fill.objects.get_or_create(
                    order=row,
                    trade_id=f.trade_id,
                    defaults={
                        "price": f.price,
                        "qty": f.qty,
                        "fee": f.commission,
                        "fee_asset": f.commission_asset,
                        "ts": ts,
                    },
                )
            recorded = list(row.fills.all())
        info = self._symbol(row.symbol)
        row.fee = sum((_fee_in_quote(f.fee, f.fee_asset, f.price, info) for f in recorded), Decimal(0))

    def _open_position(self, row: Order, stop: Decimal, take_profit: Decimal, now: datetime) -> Position:
        """The position a filled entry opened (created if missing): what it bought less base-asset fees."""
        info = self._symbol(row.symbol)
        base_fees = sum((f.fee for f in row.fills.all() if f.fee_asset == info.base), Decimal(0))
        qty = info.filters.qty_down(row.executed_qty - base_fees)
        price = row.avg_price or Decimal(0)
        try:
            position, _ = Position.objects.get_or_create(
                entry_client_order_id=row.client_order_id,
                defaults={
                    "mode": self.mode,
                    "exchange": self.exchange,
                    "symbol": row.symbol,
                    "qty": qty,
                    "entry_price": price,
                    "stop_price": stop,
                    "take_profit_price": take_profit,
                    "fees": row.fee,
                    "last_price": price,
                    "unrealised_pnl": -row.fee,
                    "risk_decision": row.risk_decision,
                    "opened_at": now,
                    "updated_at": now,
                },
            )
        except IntegrityError:  # made by another process in between
            position = Position.objects.get(entry_client_order_id=row.client_order_id)
        Order.objects.filter(pk=row.pk, position=None).update(position=position)
        return position

    def _close_by(self, position: Position, row: Order, reason: str, now: datetime) -> Position:
        """Close ``position`` by the sale ``row`` (a leg or the exit), once: realised PnL = proceeds − cost at the
        entry price − every fee."""
        fills = list(row.fills.all())
        proceeds = sum((f.price * f.qty for f in fills), Decimal(0)) or row.executed_qty * (row.avg_price or 0)
        fees = position.fees + row.fee
        pnl = proceeds - position.qty * position.entry_price - fees
        Position.objects.filter(pk=position.pk, status=Position.Status.OPEN).update(
            status=Position.Status.CLOSED,
            closed_at=now,
            exit_price=row.avg_price,
            exit_reason=reason,
            fees=fees,
            realised_pnl=pnl,
            last_price=row.avg_price,
            unrealised_pnl=None,
            protection="",
            updated_at=now,
        )
        Order.objects.filter(pk=row.pk, position=None).update(position=position)
        position.refresh_from_db()
        return position


def level_reason(position: Position, price: Decimal | None) -> str:
    """Which level an exit at ``price`` is past, else a close by hand."""
    if price is not None and price <= position.stop_price:
        return Position.ExitReason.STOP_LOSS
    if price is not None and price >= position.take_profit_price:
        return Position.ExitReason.TAKE_PROFIT
    return Position.ExitReason.MANUAL


def row_of(report: OrderReport, rows: Iterable[Order]) -> Order | None:
    """The row an OCO leg's report is about, by Binance's order id or our client id."""
    return next(
        (r for r in rows if r.exchange_order_id == report.order_id or r.client_order_id in report.client_ids), None
    )


def last_sent(row: Order) -> float:
    """When a PENDING ``row`` may have been sent: its last update, never in the future."""
    return min(row.updated_at.timestamp(), time.time())


def store_reason(order: Order, now: datetime, reason: str) -> None:
    """Store why ``order`` is as it is (its status unchanged)."""
    order.reason, order.updated_at = reason, now
    order.save(update_fields=["reason", "updated_at"])


def _fee_in_quote(fee: Decimal, asset: str, price: Decimal, info: SymbolInfo) -> Decimal:
    """A fill's fee in the quote asset: as is, or a base-asset fee at the fill's price. Another asset (BNB) is
    not converted (no price for it here) and counts as zero."""
    if asset == info.quote:
        return fee
    if asset == info.base:
        return fee * price
    if fee:
        log.warning("a fee of %s %s is not counted in the quote asset %s", fee, asset, info.quote)
    return Decimal(0)
