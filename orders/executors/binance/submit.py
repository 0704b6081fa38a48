"""The Binance executor's submission: orders made to exist once, entries and exits sent and settled.

**Unknown outcomes.** A timeout, a lost connection or a 5xx leaves an order's fate unknown ("execution status
UNKNOWN"). It is then looked up by its client id (``origClientOrderId``; ``listClientOrderId`` for the OCO) and
taken if it exists. Only when Binance says it does not (-2013) *and* the request that may have made it can no
longer arrive (``recv_window_ms`` has passed since it was signed: Binance refuses it after that) is it sent
again, with the same id. Bounded; an order still unknown stays PENDING for ``reconcile``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import partial

from markets.exchanges.binance.client import NOT_FOUND, NOT_OPEN, Report
from markets.exchanges.binance.parse import EXCHANGE
from markets.exchanges.binance.reports import parse_order_report
from markets.exchanges.errors import OutcomeUnknown, Refused

from ...ids import sibling_id
from ...models import Order, Position
from ..base import ExecutionError, finish_order
from .records import Records, last_sent, level_reason, store_reason

log = logging.getLogger(__name__)

SEND_ATTEMPTS = 3
LOOKUP_ATTEMPTS = 3
IN_FLIGHT_MARGIN = 0.25  # seconds past the recvWindow before a "does not exist" is believed


class Submission(Records):
    """Sending MARKET entries and exits, cancelling and settling single orders, under the unknown-outcome rule."""

    def _place(self, row: Order, now: datetime, *, sent_at: float | None) -> None:
        """Send the MARKET order ``row`` (``sent_at``: when it may have been sent before) and take the answer:
        the exchange's report, REJECTED with its reason, or PENDING when still unknown."""
        send = partial(
            self.client.create_order,
            symbol=row.symbol,
            side=row.side,
            type=row.type,
            quantity=fmt(row.qty),
            newClientOrderId=row.client_order_id,
            newOrderRespType="FULL",
        )
        lookup = partial(self.client.get_order, symbol=row.symbol, origClientOrderId=row.client_order_id)
        try:
            report = self._submit(send, lookup, sent_at)
        except Refused as err:
            reason = f"{row.reason}; {err.message}" if row.reason else err.message
            finish_order(row, Order.Status.REJECTED, now, reason=reason)
            log.info("%s %s refused: %s", self.mode, row.client_order_id, err.message)
            return
        except OutcomeUnknown as err:
            store_reason(row, now, f"outcome unknown ({err.message}): settled later")
            return
        self._apply(row, parse_order_report(report), now)

    def _submit(self, send: Callable[[], Report], lookup: Callable[[], Report], sent_at: float | None) -> Report:
        """Make an order (or order list) exist once. ``sent_at`` set: it may exist already, look first. Raises
        Refused when the exchange refused it, OutcomeUnknown when still unknown after the bounded attempts."""
        if sent_at is not None:
            found = self._find(lookup, sent_at)
            if found is not None:
                return found
        reason = ""
        for _ in range(SEND_ATTEMPTS):
            sent_at = time.time()
            try:
                return send()
            except OutcomeUnknown as err:
                reason = err.message
                log.warning("%s: looking the order up before sending it again", err.message)
            found = self._find(lookup, sent_at)
            if found is not None:
                return found
        raise OutcomeUnknown(EXCHANGE, reason)

    def _find(self, lookup: Callable[[], Report], sent_at: float) -> Report | None:
        """The order as Binance reports it; None once it does not exist and the request sent at ``sent_at`` can
        no longer arrive (its recvWindow passed); OutcomeUnknown when Binance cannot tell us."""
        for attempt in range(LOOKUP_ATTEMPTS):
            try:
                return lookup()
            except Refused as err:
                if err.code != NOT_FOUND:
                    raise OutcomeUnknown(EXCHANGE, f"the lookup was refused: {err.message}") from None
                wait = sent_at + self.client.recv_window_ms / 1000 + IN_FLIGHT_MARGIN - time.time()
                if wait <= 0:
                    return None
                time.sleep(wait)  # the request may still be on its way: look again once it cannot be
            except OutcomeUnknown:
                time.sleep(0.25 * 2**attempt)
        raise OutcomeUnknown(EXCHANGE, "the order could not be looked up")

    def _cancel_single(self, order: Order, now: datetime) -> None:
        """Cancel an entry or exit (a MARKET order is rarely still open: mostly this settles what it became)."""
        try:
            report = self.client.cancel_order(symbol=order.symbol, origClientOrderId=order.client_order_id)
        except Refused as err:
            if err.code != NOT_OPEN:
                raise ExecutionError(f"{order.client_order_id} could not be cancelled: {err.message}") from None
            self._reconcile_single(order, now)
            return
        except OutcomeUnknown as err:
            raise ExecutionError(f"{order.client_order_id} could not be cancelled: {err.message}") from None
        self._apply(order, parse_order_report(report), now)

    def _reconcile_single(self, row: Order, now: datetime) -> None:
        """Settle a PENDING entry or exit by asking Binance for it."""
        lookup = partial(self.client.get_order, symbol=row.symbol, origClientOrderId=row.client_order_id)
        try:
            found = self._find(lookup, last_sent(row))
        except OutcomeUnknown as err:
            log.warning("%s %s is still unknown (%s)", self.mode, row.client_order_id, err.message)
            return
        if found is None:
            finish_order(row, Order.Status.REJECTED, now, reason="never reached the exchange")
            return
        self._apply(row, parse_order_report(found), now)
        position = row.position
        if row.purpose == Order.Purpose.EXIT and row.executed_qty > 0 and not row.is_open and position is not None:
            self._close_by(position, row, level_reason(position, row.avg_price), now)

    def _exit(self, position: Position, reason: str | None, now: datetime, note: str = "") -> Position:
        """Sell ``position`` at market (its protection cancelled already) and close it. ``reason`` None: the
        level the exit price is past (else closed by hand)."""
        row, created = self._claim(
            sibling_id(position.entry_client_order_id, "exit"),
            now,
            symbol=position.symbol,
            side="SELL",
            type="MARKET",
            purpose=Order.Purpose.EXIT,
            qty=position.qty,
            position=position,
            risk_decision=position.risk_decision,
        )
        since = None if created else last_sent(row)
        if not row.is_open and row.executed_qty <= 0:  # refused before: never on the exchange, so the id is free
            row.status, row.qty, row.reason, since = Order.Status.PENDING, position.qty, "", None
        if row.status == Order.Status.PENDING:
            if note:
                row.reason = note
            row.updated_at = now
            row.save(update_fields=["status", "qty", "reason", "updated_at"])
            self._place(row, now, sent_at=since)
        if row.executed_qty <= 0 or row.is_open:
            return position
        return self._close_by(position, row, reason or level_reason(position, row.avg_price), now)


def fmt(value: Decimal) -> str:
    """A decimal as Binance takes it: no exponent (``f"{Decimal('1E-5'):f}"`` is ``0.00001``)."""
    return f"{value:f}"
