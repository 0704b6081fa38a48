"""The Binance executor's protection: one SELL OCO per open position, placed, checked, settled and cancelled.

The OCO is a LIMIT_MAKER at the take-profit above the market and a STOP_LOSS at the stop below, with ids
``sibling_id(entry, "list" | "take_profit" | "stop_loss", attempt=n)`` (n: how many OCOs the position had
before). If Binance refuses it because the market is already past a level, the position is sold at market rather
than left unprotected. Whichever leg fills closes the position; an OCO done without a fill leaves the position
unprotected until ``reconcile`` protects it again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_UP
from functools import partial

from markets.exchanges.binance.client import NOT_OPEN, Report
from markets.exchanges.binance.reports import parse_order_report
from markets.exchanges.errors import ExchangeError, OutcomeUnknown, Refused

from ...ids import sibling_id
from ...models import Order, Position
from ...risk import to_step
from ..base import ExecutionError, finish_order
from .records import PROTECTIVE, last_sent, row_of, store_reason
from .submit import Submission, fmt

log = logging.getLogger(__name__)

PRICE_RELATIONSHIP = "relationship of the prices"  # -2010: the market is already past a level of the OCO
MAX_ATTEMPT = 9  # protective OCOs per position (sibling ids stay within Binance's 36 characters)


class Protection(Submission):
    """The OCO of each open position (see the module docstring)."""

    def _protect(self, position: Position, now: datetime) -> None:
        """Place ``position``'s OCO (after settling one whose placement went unanswered). Refused because the
        market is already past a level: the position is sold at market instead."""
        self._settle_pending_protection(position, now)
        if position.status != Position.Status.OPEN or position.protection:
            return
        rows = Order.objects.filter(position=position, purpose=Order.Purpose.STOP_LOSS)
        attempt = rows.count()
        if attempt > MAX_ATTEMPT:
            log.error("%s: %d protective OCOs already, no more are placed", position, attempt)
            return
        info, entry_id = self._symbol(position.symbol), position.entry_client_order_id
        stop = to_step(position.stop_price, info.filters.tick_size, ROUND_DOWN)
        take_profit = to_step(position.take_profit_price, info.filters.tick_size, ROUND_UP)
        qty = info.filters.qty_down(position.qty)
        common = {
            "symbol": position.symbol,
            "side": "SELL",
            "qty": qty,
            "position": position,
            "risk_decision": position.risk_decision,
        }
        stop_row, _ = self._claim(
            sibling_id(entry_id, "stop_loss", attempt=attempt),
            now,
            type="STOP_LOSS",
            purpose=Order.Purpose.STOP_LOSS,
            stop_price=stop,
            **common,
        )
        tp_row, _ = self._claim(
            sibling_id(entry_id, "take_profit", attempt=attempt),
            now,
            type="LIMIT_MAKER",
            purpose=Order.Purpose.TAKE_PROFIT,
            price=take_profit,
            **common,
        )
        list_id = sibling_id(entry_id, "list", attempt=attempt)
        send = partial(
            self.client.create_oco,
            symbol=position.symbol,
            side="SELL",
            quantity=fmt(qty),
            listClientOrderId=list_id,
            aboveType="LIMIT_MAKER",
            abovePrice=fmt(take_profit),
            aboveClientOrderId=tp_row.client_order_id,
            belowType="STOP_LOSS",
            belowStopPrice=fmt(stop),
            belowClientOrderId=stop_row.client_order_id,
            newOrderRespType="RESULT",
        )
        try:
            report = self._submit(send, partial(self._lookup_list, position.symbol, list_id), None)
        except Refused as err:
            for row in (stop_row, tp_row):
                finish_order(row, Order.Status.REJECTED, now, reason=err.message)
            if PRICE_RELATIONSHIP in err.message.lower():
                log.warning("%s: protection refused (%s): closing at market", position, err.message)
                self._exit(position, None, now, note=f"protection refused: {err.message}; closed at market")
            else:
                log.error("%s: protection refused (%s): unprotected until reconcile", position, err.message)
            return
        except OutcomeUnknown as err:
            for row in (stop_row, tp_row):
                store_reason(row, now, f"outcome unknown ({err.message}): settled later")
            return
        self._take_list(position, report, [stop_row, tp_row], now)

    def _settle_pending_protection(self, position: Position, now: datetime) -> None:
        """An OCO whose placement went unanswered: taken if Binance has it, else marked never placed."""
        pending = list(Order.objects.filter(position=position, purpose__in=PROTECTIVE, status=Order.Status.PENDING))
        if not pending:
            return
        entry_id = position.entry_client_order_id
        attempt = int(pending[0].client_order_id[len(entry_id) :] or 0)
        lookup = partial(self._lookup_list, position.symbol, sibling_id(entry_id, "list", attempt=attempt))
        try:
            found = self._find(lookup, last_sent(pending[0]))
        except OutcomeUnknown as err:
            log.warning("%s: its protection is still unknown (%s)", position, err.message)
            return
        if found is None:
            for row in pending:
                finish_order(row, Order.Status.REJECTED, now, reason="never reached the exchange")
        else:
            self._take_list(position, found, pending, now)

    def _lookup_list(self, symbol: str, list_client_id: str) -> Report:
        """An OCO by its client id, with its legs' reports (as placing it answers)."""
        found = self.client.get_order_list(origClientOrderId=list_client_id)
        legs = [self.client.get_order(symbol=symbol, orderId=o["orderId"]) for o in found.get("orders", [])]
        return {**found, "orderReports": legs}

    def _take_list(self, position: Position, report: Report, rows: list[Order], now: datetime) -> None:
        """An OCO's answer into its legs' rows and the position; a leg that filled already closes it."""
        self._apply_legs(report, rows, now)
        position.protection = str(report["orderListId"])
        position.updated_at = now
        position.save(update_fields=["protection", "updated_at"])
        self._settle_legs(position, rows, now)

    def _apply_legs(self, report: Report, rows: list[Order], now: datetime) -> None:
        """The legs' reports of an OCO answer (placed, looked up or cancelled) into their rows."""
        for leg in report.get("orderReports", []):
            parsed = parse_order_report(leg)
            row = row_of(parsed, rows)
            if row is not None:
                self._apply(row, parsed, now)

    def _check_list(self, position: Position, now: datetime) -> None:
        """Ask Binance about ``position``'s OCO: once it is done, read its legs and settle them."""
        list_id = int(position.protection)
        try:
            found = self.client.get_order_list(orderListId=list_id)
            if found.get("listOrderStatus") == "EXECUTING":
                return
            rows = list(Order.objects.filter(position=position, purpose__in=PROTECTIVE, order_list_id=list_id))
            for row in rows:
                if row.is_open:
                    report = self.client.get_order(symbol=row.symbol, orderId=row.exchange_order_id)
                    self._apply(row, parse_order_report(report), now)
        except ExchangeError as err:
            log.warning("%s: its protection could not be read (%s)", position, err.message)
            return
        self._settle_legs(position, rows, now)

    def _settle_legs(self, position: Position, rows: Iterable[Order], now: datetime) -> None:
        """The leg that filled closes the position; legs all done without a fill leave it unprotected."""
        rows = list(rows)
        filled = next((r for r in rows if r.executed_qty > 0 and not r.is_open), None)
        if filled is not None:
            self._close_by(position, filled, str(filled.purpose), now)
        elif rows and not any(r.is_open for r in rows):
            log.warning("%s: its protection ended without a fill (%s)", position, ", ".join(r.status for r in rows))
            position.protection, position.updated_at = "", now
            position.save(update_fields=["protection", "updated_at"])

    def _cancel_list(self, position: Position, now: datetime) -> None:
        """Cancel ``position``'s OCO. After it the position is open without protection, or closed by a leg that
        filled first; ExecutionError when the OCO is (or may be) still working."""
        list_id = int(position.protection)
        rows = list(Order.objects.filter(position=position, purpose__in=PROTECTIVE, order_list_id=list_id))
        try:
            report = self.client.cancel_order_list(symbol=position.symbol, orderListId=list_id)
        except Refused as err:
            if err.code != NOT_OPEN:
                log.warning("%s: its protection could not be cancelled (%s)", position, err.message)
                raise ExecutionError(
                    f"Binance refused to cancel the protection of the {position.symbol} position ({err.message}): "
                    "it stays in place"
                ) from None
            why = err.message
        except OutcomeUnknown as err:
            why = err.message
        else:
            self._apply_legs(report, rows, now)
            position.protection, position.updated_at = "", now
            position.save(update_fields=["protection", "updated_at"])
            return
        self._check_list(position, now)  # done already, or the cancel's outcome is unknown: ask
        if position.status == Position.Status.OPEN and position.protection:
            raise ExecutionError(
                f"the protection of the {position.symbol} position could not be cancelled ({why}) and may still be "
                "working: nothing was sold"
            )
