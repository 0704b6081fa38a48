"""The Binance executor: signed spot orders through python-binance's REST client (testnet unless told "live").

How it keeps the rows equal to the exchange (the rules of :mod:`.base`, applied to Binance):

- **One order per id.** Every order carries the client id derived from its signal (:mod:`orders.ids`) and is
  written PENDING before it is sent.
- **Unknown outcomes.** A timeout, a lost connection or a 5xx leaves an order's fate unknown ("execution status
  UNKNOWN"). It is then looked up by its client id (``origClientOrderId``; ``listClientOrderId`` for the OCO) and
  taken if it exists. Only when Binance says it does not (-2013) *and* the request that may have made it can no
  longer arrive (``recv_window_ms`` has passed since it was signed: Binance refuses it after that) is it sent
  again, with the same id. Bounded; an order still unknown stays PENDING for ``reconcile``.
- **Clock.** python-binance's ``timestamp_offset`` is Binance's time minus the local midpoint of a
  ``/api/v3/time`` round trip, measured before the first signed request and every 5 minutes; a -1021 (the
  request was refused for its timestamp, so nothing happened) re-measures it and retries once.
- **Protection.** One SELL OCO per position: a LIMIT_MAKER at the take-profit above the market, a STOP_LOSS at
  the stop below, ids ``sibling_id(entry, "list" | "take_profit" | "stop_loss", attempt=n)`` (n: how many OCOs
  the position had before). If Binance refuses it because the market is already past a level, the position is
  sold at market rather than left unprotected. ``watch`` asks for the list's status when a trade crossed a level
  (at most once a second) and otherwise every 5 s; the leg that filled closes the position.
- **Closing is all or nothing.** Before anything is sent, ``close`` checks the exit can be named (an entry id of
  ours), the symbol's filters (minimum quantity and notional) and that the account holds the quantity; only then
  is the OCO cancelled and the position sold. An OCO that cannot be cancelled stays; an exit that Binance refuses
  puts the protection back at once; an exit whose outcome is unknown is left to ``reconcile`` (which protects the
  position again if it did not sell). Each of these is an ExecutionError saying so.
- **Money.** Fees are kept in the quote asset (a base-asset fee at its fill's price). A position holds what the
  entry bought less base-asset fees, rounded down to the step; realised PnL = exit proceeds − the position's cost
  at its entry price − every fee. When Binance gives no trade list (``/api/v3/myTrades``, absent from the
  simulator), a filled order's fill is its own average price and quantity, with the account's commission rate.
- **Secrets.** The key and secret go to python-binance and nowhere else. A stored or logged reason is the
  exchange's message with its code, or "timeout"/"connection error" with the method and path: never a URL (a
  GET's query carries the signature) nor a requests exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from functools import partial
from typing import Any

import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException
from django.conf import settings
from django.db import IntegrityError

from ..ids import sibling_id
from ..models import Fill, Mode, Order, Position
from ..risk import Filters
from ..selectors import open_positions
from .base import Cash, Entry, ExecutionError, Executor, PricePoint, check_exit_id, finish_order

log = logging.getLogger(__name__)

Report = dict[str, Any]

NOT_FOUND = -2013  # "Order does not exist." / "Order list does not exist."
NOT_OPEN = -2011  # "Unknown order sent." / "Unknown order list sent.": a cancel of what is not working
BAD_TIMESTAMP = -1021
BACKEND_TIMEOUT = -1007  # "Send status unknown; execution status unknown."
PRICE_RELATIONSHIP = "relationship of the prices"  # -2010: the market is already past a level of the OCO
SEND_ATTEMPTS = 3
LOOKUP_ATTEMPTS = 3
IN_FLIGHT_MARGIN = 0.25  # seconds past the recvWindow before a "does not exist" is believed
CLOCK_REFRESH_SECONDS = 300.0
CHECK_EVERY = timedelta(seconds=5)  # protection of an open position asked about at least this often...
CHECK_CROSSED = timedelta(seconds=1)  # ...and at most this often while trades are past one of its levels
MAX_ATTEMPT = 9  # protective OCOs per position (sibling ids stay within Binance's 36 characters)
FEE_PLACES = Decimal("0.00000001")
DEFAULT_COMMISSION = Decimal("0.001")
PROTECTIVE = (Order.Purpose.STOP_LOSS, Order.Purpose.TAKE_PROFIT)
STATUSES = {"EXPIRED_IN_MATCH": Order.Status.EXPIRED, "PENDING_CANCEL": Order.Status.CANCELED}  # Binance's others


class BinanceFailure(Exception):
    """A request that did not succeed. ``reason`` is safe to store and log: no key, signature or URL."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class Refused(BinanceFailure):
    """Binance answered with an error: the request changed nothing."""


class OutcomeUnknown(BinanceFailure):
    """No answer (timeout, lost connection) or a 5xx: the request may or may not have been executed."""


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """What the executor needs of a symbol: its assets and its trading filters."""

    base: str
    quote: str
    filters: Filters


@dataclass(frozen=True, slots=True)
class TradeFill:
    """One execution of an order, as Binance reports it in a FULL answer or ``/api/v3/myTrades``."""

    trade_id: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str


def parse_symbol(info: Report) -> SymbolInfo:
    """One symbol of ``/api/v3/exchangeInfo``::

    {"symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT", "filters": [
      {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
       "tickSize": "0.01000000"},
      {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
      {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": true, ...}]}
    """
    by_type = {f["filterType"]: f for f in info.get("filters", [])}
    price, lot = by_type.get("PRICE_FILTER", {}), by_type.get("LOT_SIZE", {})
    notional = by_type.get("NOTIONAL") or by_type.get("MIN_NOTIONAL") or {}
    max_qty = _norm(lot["maxQty"]) if "maxQty" in lot else None
    return SymbolInfo(
        info["baseAsset"],
        info["quoteAsset"],
        Filters(
            tick_size=_norm(price.get("tickSize", "0")),
            step_size=_norm(lot.get("stepSize", "0")),
            min_qty=_norm(lot.get("minQty", "0")),
            max_qty=max_qty or None,
            min_notional=_norm(notional.get("minNotional", "0")),
        ),
    )


def parse_fill(frame: Report) -> TradeFill:
    """A fill of a FULL order answer, ``{"price": "4000.00000000", "qty": "1.00000000", "commission":
    "4.00000000", "commissionAsset": "USDT", "tradeId": 56}``, or a ``/api/v3/myTrades`` row (``"id"`` for
    ``"tradeId"``)."""
    return TradeFill(
        str(frame["tradeId"] if "tradeId" in frame else frame["id"]),
        Decimal(frame["price"]),
        Decimal(frame["qty"]),
        Decimal(frame["commission"]),
        frame["commissionAsset"],
    )


class BinanceExecutor(Executor):
    """Orders on Binance spot (``mode`` testnet or live), with their protection, through python-binance."""

    exchange = "binance"

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
        mode = (mode or settings.TRADING_MODE).strip().lower()
        if mode not in (Mode.TESTNET, Mode.LIVE):
            raise ValueError(f"the Binance executor trades in 'testnet' or 'live' mode, not {mode!r}")
        key = settings.BINANCE_API_KEY if key is None else key
        secret = settings.BINANCE_API_SECRET if secret is None else secret
        if not key or not secret:
            raise ExecutionError("Binance trading needs BINANCE_API_KEY and BINANCE_API_SECRET")
        timeout = settings.BINANCE_TIMEOUT_SECONDS if timeout is None else timeout
        self.mode = mode
        self.recv_window_ms = recv_window_ms
        self.client = Client(key, secret, ping=False, requests_params={"timeout": timeout})
        self.client.API_URL = (settings.BINANCE_REST_URL if rest_url is None else rest_url).rstrip("/") + "/api"
        self.client.REQUEST_RECVWINDOW = recv_window_ms
        self._clock_at: float | None = None
        self._symbols: dict[str, SymbolInfo] = {}
        self._commission: tuple[Decimal, Decimal] | None = None  # (maker, taker)
        self._my_trades = True  # False once /api/v3/myTrades turned out to be missing
        self._checked: dict[Any, datetime] = {}  # position pk -> when its protection was last asked about

    # -- account ----------------------------------------------------------------------------------
    def filters(self, symbol: str) -> Filters:
        return self._symbol(symbol).filters

    def cash(self, symbol: str) -> Cash:
        asset = self._symbol(symbol).quote
        try:
            account = self._call("GET /api/v3/account", self.client.get_account)
        except BinanceFailure as err:
            raise ExecutionError(f"the Binance account could not be read: {err.reason}") from None
        for balance in account.get("balances", []):
            if balance["asset"] == asset:
                free = Decimal(balance["free"])
                return Cash(asset, free, free + Decimal(balance["locked"]))
        return Cash(asset, Decimal(0), Decimal(0))

    def _symbol(self, symbol: str) -> SymbolInfo:
        if symbol not in self._symbols:
            try:  # python-binance's get_symbol_info downloads every symbol; ask for the one
                info = self._raw("GET /api/v3/exchangeInfo", self.client._get, "exchangeInfo", data={"symbol": symbol})
            except BinanceFailure as err:
                raise ExecutionError(f"Binance's filters of {symbol} could not be read: {err.reason}") from None
            found = [s for s in info.get("symbols", []) if s.get("symbol") == symbol]
            if not found:
                raise ExecutionError(f"Binance does not list {symbol}")
            self._symbols[symbol] = parse_symbol(found[0])
        return self._symbols[symbol]

    # -- the executor's interface -------------------------------------------------------------------
    def open(self, entry: Entry, now: datetime) -> Position | None:
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
            self._place(row, now, sent_at=None if created else _sent_at(row))
        if row.executed_qty <= 0:
            return None
        position = self._open_position(row, entry.stop_price, entry.take_profit_price, now)
        self._protect(position, now)
        position.refresh_from_db()
        return position

    def close(self, position: Position, reason: str, now: datetime, price: Decimal | None = None) -> Position:
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
            account = self._call("GET /api/v3/account", self.client.get_account)
        except BinanceFailure as err:
            raise ExecutionError(f"the Binance account could not be read ({err.reason}): {stays}") from None
        free = next((Decimal(b["free"]) for b in account.get("balances", []) if b["asset"] == info.base), Decimal(0))
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

    # -- entries and positions ------------------------------------------------------------------------
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

    # -- protection -----------------------------------------------------------------------------------
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
        stop = _to_step(position.stop_price, info.filters.tick_size, ROUND_DOWN)
        take_profit = _to_step(position.take_profit_price, info.filters.tick_size, ROUND_UP)
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
            self._call,
            "POST /api/v3/orderList/oco",
            self.client.create_oco_order,
            symbol=position.symbol,
            side="SELL",
            quantity=_fmt(qty),
            listClientOrderId=list_id,
            aboveType="LIMIT_MAKER",
            abovePrice=_fmt(take_profit),
            aboveClientOrderId=tp_row.client_order_id,
            belowType="STOP_LOSS",
            belowStopPrice=_fmt(stop),
            belowClientOrderId=stop_row.client_order_id,
            newOrderRespType="RESULT",
        )
        try:
            report = self._submit(send, partial(self._lookup_list, position.symbol, list_id), None)
        except Refused as err:
            for row in (stop_row, tp_row):
                finish_order(row, Order.Status.REJECTED, now, reason=err.reason)
            if PRICE_RELATIONSHIP in err.reason.lower():
                log.warning("%s: protection refused (%s): closing at market", position, err.reason)
                self._exit(position, None, now, note=f"protection refused: {err.reason}; closed at market")
            else:
                log.error("%s: protection refused (%s): unprotected until reconcile", position, err.reason)
            return
        except OutcomeUnknown as err:
            for row in (stop_row, tp_row):
                _note(row, now, f"outcome unknown ({err.reason}): settled later")
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
            found = self._find(lookup, _sent_at(pending[0]))
        except OutcomeUnknown as err:
            log.warning("%s: its protection is still unknown (%s)", position, err.reason)
            return
        if found is None:
            for row in pending:
                finish_order(row, Order.Status.REJECTED, now, reason="never reached the exchange")
        else:
            self._take_list(position, found, pending, now)

    def _lookup_list(self, symbol: str, list_client_id: str) -> Report:
        """An OCO by its client id, with its legs' reports (as placing it answers)."""
        found = self._call("GET /api/v3/orderList", self.client.v3_get_order_list, origClientOrderId=list_client_id)
        legs = [
            self._call("GET /api/v3/order", self.client.get_order, symbol=symbol, orderId=o["orderId"])
            for o in found.get("orders", [])
        ]
        return {**found, "orderReports": legs}

    def _take_list(self, position: Position, report: Report, rows: list[Order], now: datetime) -> None:
        """An OCO's answer into its legs' rows and the position; a leg that filled already closes it."""
        for leg in report.get("orderReports", []):
            row = _row_of(leg, rows)
            if row is not None:
                self._apply(row, leg, now)
        position.protection = str(report["orderListId"])
        position.updated_at = now
        position.save(update_fields=["protection", "updated_at"])
        self._settle_legs(position, rows, now)

    def _due(self, position: Position, prices: Sequence[PricePoint], now: datetime) -> bool:
        last = self._checked.get(position.pk)
        crossed = any(p.price <= position.stop_price or p.price >= position.take_profit_price for p in prices)
        return last is None or now - last >= (CHECK_CROSSED if crossed else CHECK_EVERY)

    def _check_list(self, position: Position, now: datetime) -> None:
        """Ask Binance about ``position``'s OCO: once it is done, read its legs and settle them."""
        list_id = int(position.protection)
        try:
            found = self._call("GET /api/v3/orderList", self.client.v3_get_order_list, orderListId=list_id)
            if found.get("listOrderStatus") == "EXECUTING":
                return
            rows = list(Order.objects.filter(position=position, purpose__in=PROTECTIVE, order_list_id=list_id))
            for row in rows:
                if row.is_open:
                    self._apply(
                        row,
                        self._call(
                            "GET /api/v3/order", self.client.get_order, symbol=row.symbol, orderId=row.exchange_order_id
                        ),
                        now,
                    )
        except BinanceFailure as err:
            log.warning("%s: its protection could not be read (%s)", position, err.reason)
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
            report = self._call(
                "DELETE /api/v3/orderList",
                self.client.v3_delete_order_list,
                symbol=position.symbol,
                orderListId=list_id,
            )
        except Refused as err:
            if err.code != NOT_OPEN:
                log.warning("%s: its protection could not be cancelled (%s)", position, err.reason)
                raise ExecutionError(
                    f"Binance refused to cancel the protection of the {position.symbol} position ({err.reason}): "
                    "it stays in place"
                ) from None
            why = err.reason
        except OutcomeUnknown as err:
            why = err.reason
        else:
            for leg in report.get("orderReports", []):
                row = _row_of(leg, rows)
                if row is not None:
                    self._apply(row, leg, now)
            position.protection, position.updated_at = "", now
            position.save(update_fields=["protection", "updated_at"])
            return
        self._check_list(position, now)  # done already, or the cancel's outcome is unknown: ask
        if position.status == Position.Status.OPEN and position.protection:
            raise ExecutionError(
                f"the protection of the {position.symbol} position could not be cancelled ({why}) and may still be "
                "working: nothing was sold"
            )

    # -- exits ----------------------------------------------------------------------------------------
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
        sent_at = None if created else _sent_at(row)
        if not row.is_open and row.executed_qty <= 0:  # refused before: never on the exchange, so the id is free
            row.status, row.qty, row.reason, sent_at = Order.Status.PENDING, position.qty, "", None
        if row.status == Order.Status.PENDING:
            if note:
                row.reason = note
            row.updated_at = now
            row.save(update_fields=["status", "qty", "reason", "updated_at"])
            self._place(row, now, sent_at=sent_at)
        if row.executed_qty <= 0 or row.is_open:
            return position
        return self._close_by(position, row, reason or _level_reason(position, row.avg_price), now)

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

    def _cancel_single(self, order: Order, now: datetime) -> None:
        """Cancel an entry or exit (a MARKET order is rarely still open: mostly this settles what it became)."""
        try:
            report = self._call(
                "DELETE /api/v3/order",
                self.client.cancel_order,
                symbol=order.symbol,
                origClientOrderId=order.client_order_id,
            )
        except Refused as err:
            if err.code != NOT_OPEN:
                raise ExecutionError(f"{order.client_order_id} could not be cancelled: {err.reason}") from None
            self._reconcile_single(order, now)
            return
        except OutcomeUnknown as err:
            raise ExecutionError(f"{order.client_order_id} could not be cancelled: {err.reason}") from None
        self._apply(order, report, now)

    def _reconcile_single(self, row: Order, now: datetime) -> None:
        """Settle a PENDING entry or exit by asking Binance for it."""
        lookup = partial(
            self._call,
            "GET /api/v3/order",
            self.client.get_order,
            symbol=row.symbol,
            origClientOrderId=row.client_order_id,
        )
        try:
            found = self._find(lookup, _sent_at(row))
        except OutcomeUnknown as err:
            log.warning("%s %s is still unknown (%s)", self.mode, row.client_order_id, err.reason)
            return
        if found is None:
            finish_order(row, Order.Status.REJECTED, now, reason="never reached the exchange")
            return
        self._apply(row, found, now)
        position = row.position
        if row.purpose == Order.Purpose.EXIT and row.executed_qty > 0 and not row.is_open and position is not None:
            self._close_by(position, row, _level_reason(position, row.avg_price), now)

    # -- placing: the unknown-outcome rule ----------------------------------------------------------------
    def _place(self, row: Order, now: datetime, *, sent_at: float | None) -> None:
        """Send the MARKET order ``row`` (``sent_at``: when it may have been sent before) and take the answer:
        the exchange's report, REJECTED with its reason, or PENDING when still unknown."""
        send = partial(
            self._call,
            "POST /api/v3/order",
            self.client.create_order,
            symbol=row.symbol,
            side=row.side,
            type=row.type,
            quantity=_fmt(row.qty),
            newClientOrderId=row.client_order_id,
            newOrderRespType="FULL",
        )
        lookup = partial(
            self._call,
            "GET /api/v3/order",
            self.client.get_order,
            symbol=row.symbol,
            origClientOrderId=row.client_order_id,
        )
        try:
            report = self._submit(send, lookup, sent_at)
        except Refused as err:
            reason = f"{row.reason}; {err.reason}" if row.reason else err.reason
            finish_order(row, Order.Status.REJECTED, now, reason=reason)
            log.info("%s %s refused: %s", self.mode, row.client_order_id, err.reason)
            return
        except OutcomeUnknown as err:
            _note(row, now, f"outcome unknown ({err.reason}): settled later")
            return
        self._apply(row, report, now)

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
                reason = err.reason
                log.warning("%s: looking the order up before sending it again", err.reason)
            found = self._find(lookup, sent_at)
            if found is not None:
                return found
        raise OutcomeUnknown(reason)

    def _find(self, lookup: Callable[[], Report], sent_at: float) -> Report | None:
        """The order as Binance reports it; None once it does not exist and the request sent at ``sent_at`` can
        no longer arrive (its recvWindow passed); OutcomeUnknown when Binance cannot tell us."""
        for attempt in range(LOOKUP_ATTEMPTS):
            try:
                return lookup()
            except Refused as err:
                if err.code != NOT_FOUND:
                    raise OutcomeUnknown(f"the lookup was refused: {err.reason}") from None
                wait = sent_at + self.recv_window_ms / 1000 + IN_FLIGHT_MARGIN - time.time()
                if wait <= 0:
                    return None
                time.sleep(wait)  # the request may still be on its way: look again once it cannot be
            except OutcomeUnknown:
                time.sleep(0.25 * 2**attempt)
        raise OutcomeUnknown("the order could not be looked up")

    # -- reports into rows ----------------------------------------------------------------------------
    def _apply(self, row: Order, report: Report, now: datetime) -> None:
        """Binance's report of ``row`` (a placement, query or cancel answer) into the row and its fills."""
        row.exchange_order_id = int(report["orderId"])
        if int(report.get("orderListId", -1)) >= 0:
            row.order_list_id = int(report["orderListId"])
        status = report.get("status") or (Order.Status.NEW if row.status == Order.Status.PENDING else row.status)
        row.status = STATUSES.get(status, status)
        if "executedQty" in report:
            executed, quote = Decimal(report["executedQty"]), Decimal(report["cummulativeQuoteQty"])
            row.executed_qty = executed
            row.avg_price = quote / executed if executed else None
            if executed > 0:
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

    def _record_fills(self, row: Order, report: Report, now: datetime) -> None:
        """The order's fills (from the answer, else ``/api/v3/myTrades``) and its fee in the quote asset."""
        recorded = list(row.fills.all())
        if sum((f.qty for f in recorded), Decimal(0)) < row.executed_qty:
            frames = report.get("fills")
            fills = [parse_fill(f) for f in frames] if frames else self._trades(row, report)
            stamp = report.get("transactTime") or report.get("updateTime")
            ts = datetime.fromtimestamp(stamp / 1000, tz=UTC) if stamp else now
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

    def _trades(self, row: Order, report: Report) -> list[TradeFill]:
        """The order's trades from ``/api/v3/myTrades``; without that endpoint (or trades yet), one fill at the
        order's average price with the account's commission (maker for a LIMIT_MAKER, else taker)."""
        if self._my_trades:
            try:
                trades = self._call(
                    "GET /api/v3/myTrades", self.client.get_my_trades, symbol=row.symbol, orderId=row.exchange_order_id
                )
                if trades:
                    return [parse_fill(t) for t in trades]
            except Refused as err:
                log.info("no trade list (%s): fills are taken from their orders", err.reason)
                self._my_trades = False
            except OutcomeUnknown:
                pass
        executed, quote = Decimal(report["executedQty"]), Decimal(report["cummulativeQuoteQty"])
        maker, taker = self._commission_rates()
        rate = maker if row.type == "LIMIT_MAKER" else taker
        info = self._symbol(row.symbol)
        if row.side == "BUY":
            commission, asset = (executed * rate).quantize(FEE_PLACES), info.base
        else:
            commission, asset = (quote * rate).quantize(FEE_PLACES), info.quote
        return [TradeFill(f"order-{row.exchange_order_id}", quote / executed, executed, commission, asset)]

    def _commission_rates(self) -> tuple[Decimal, Decimal]:
        if self._commission is None:
            try:
                rates = self._call("GET /api/v3/account", self.client.get_account).get("commissionRates", {})
                self._commission = (Decimal(rates["maker"]), Decimal(rates["taker"]))
            except (BinanceFailure, KeyError):
                return DEFAULT_COMMISSION, DEFAULT_COMMISSION
        return self._commission

    def _claim(self, client_id: str, now: datetime, **fields: Any) -> tuple[Order, bool]:
        """The order with ``client_id``: created PENDING (True), or the one stored before (False)."""
        try:
            return Order.objects.get_or_create(
                client_order_id=client_id,
                defaults={"mode": self.mode, "exchange": self.exchange, **fields, "created_at": now, "updated_at": now},
            )
        except IntegrityError:  # made by another process in between
            return Order.objects.get(client_order_id=client_id), False

    # -- requests ---------------------------------------------------------------------------------------
    def _call(self, label: str, fn: Callable[..., Any], **params: Any) -> Any:
        """A signed request (``label``: method and path, for reasons and logs) with a synced clock; a -1021
        re-measures the clock and tries once more."""
        self._sync_clock()
        try:
            return self._raw(label, fn, **params)
        except Refused as err:
            if err.code != BAD_TIMESTAMP:
                raise
            log.warning("%s: re-measuring the clock offset and trying again", err.reason)
            self._sync_clock(force=True)
            return self._raw(label, fn, **params)

    def _raw(self, label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One request, its failures translated (``from None``: a requests exception names the signed URL)."""
        try:
            return fn(*args, **kwargs)
        except BinanceAPIException as exc:
            message = str(exc.message)[:200]
            reason = f"{message} ({exc.code})" if exc.code else f"{message} (HTTP {exc.status_code})"
            if exc.status_code >= 500 or exc.code == BACKEND_TIMEOUT:
                raise OutcomeUnknown(f"HTTP {exc.status_code} on {label}: {reason}", exc.code) from None
            raise Refused(reason, exc.code) from None
        except requests.Timeout:
            raise OutcomeUnknown(f"timeout on {label}") from None
        except requests.RequestException:
            raise OutcomeUnknown(f"connection error on {label}") from None
        except BinanceRequestException:
            raise OutcomeUnknown(f"unreadable answer on {label}") from None

    def _sync_clock(self, *, force: bool = False) -> None:
        """``timestamp_offset``: Binance's time minus the local midpoint of the request that read it (ms)."""
        if not force and self._clock_at is not None and time.monotonic() - self._clock_at < CLOCK_REFRESH_SECONDS:
            return
        before = time.time()
        server = self._raw("GET /api/v3/time", self.client.get_server_time)["serverTime"]
        after = time.time()
        self.client.timestamp_offset = round(server - (before + after) / 2 * 1000)
        self._clock_at = time.monotonic()
        log.debug("Binance clock offset: %d ms", self.client.timestamp_offset)

    def _ensure_clock(self) -> None:
        try:
            self._sync_clock()
        except BinanceFailure as err:
            raise ExecutionError(f"Binance is unreachable: {err.reason}") from None


# -- small pure helpers ---------------------------------------------------------------------------------
def _norm(text: str) -> Decimal:
    return Decimal(text).normalize()


def _fmt(value: Decimal) -> str:
    """A decimal as Binance takes it: no exponent (``f"{Decimal('1E-5'):f}"`` is ``0.00001``)."""
    return f"{value:f}"


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=rounding) * step


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


def _level_reason(position: Position, price: Decimal | None) -> str:
    """Which level an exit at ``price`` is past, else a close by hand."""
    if price is not None and price <= position.stop_price:
        return Position.ExitReason.STOP_LOSS
    if price is not None and price >= position.take_profit_price:
        return Position.ExitReason.TAKE_PROFIT
    return Position.ExitReason.MANUAL


def _row_of(report: Report, rows: Iterable[Order]) -> Order | None:
    ids = {report.get("clientOrderId"), report.get("origClientOrderId")}
    return next((r for r in rows if r.exchange_order_id == report.get("orderId") or r.client_order_id in ids), None)


def _sent_at(row: Order) -> float:
    """When a PENDING ``row`` may have been sent: its last update, never in the future."""
    return min(row.updated_at.timestamp(), time.time())


def _note(order: Order, now: datetime, reason: str) -> None:
    order.reason, order.updated_at = reason, now
    order.save(update_fields=["reason", "updated_at"])
