"""The account book: every spot account (balances per API key) and its orders; placing MARKET and resting
orders and OCO order lists, cancels, and matching against the market's prints.

Pure bookkeeping over Decimals; the HTTP layer (signed.py) parses and signs, this decides. The records it
keeps are in records.py, the symbol filters in filters.py.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from ..symbols import SymbolSpec
from .errors import (
    BAD_PRICE_RELATIONSHIP,
    DUPLICATE_ORDER,
    INSUFFICIENT_BALANCE,
    OCO_LEG_SIDE,
    UNKNOWN_ORDER,
    UNKNOWN_ORDER_LIST,
    BinanceError,
)
from .filters import check_filters
from .records import OPEN_STATUSES, RESTING_TYPES, STOP_TYPES, Account, Fill, OcoLeg, Order, OrderList

COMMISSION = Decimal("0.001")


class OrderBook:
    """Every account, order ids, and the matching of orders against the market's prints."""

    def __init__(self, keys: dict[str, str], balances: dict[str, Decimal]) -> None:
        self.accounts = {k: Account(k, s, dict(balances)) for k, s in keys.items()}
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._list_ids = itertools.count(1)

    def place(
        self,
        account: Account,
        spec: SymbolSpec,
        *,
        side: str,
        type_: str,
        qty: Decimal,
        price: Decimal | None,
        stop_price: Decimal | None,
        tif: str | None,
        client_id: str,
        market_price: Decimal,
        now: int,
    ) -> Order:
        """Validate, reserve funds, and fill what can fill now. Raises BinanceError when rejected."""
        if any(o.symbol == spec.symbol and o.client_order_id == client_id for o in account.open.values()):
            raise BinanceError(*DUPLICATE_ORDER)
        check_filters(spec, price, qty, market_price)
        if (
            type_ == "LIMIT_MAKER"
            and price is not None
            and ((side == "BUY" and price >= market_price) or (side == "SELL" and price <= market_price))
        ):
            raise BinanceError(-2010, "Order would immediately match and take.")
        if (
            type_ in STOP_TYPES
            and stop_price is not None
            and self._triggers(type_, side, market_price, market_price, stop_price)
        ):
            raise BinanceError(-2010, "Stop price would trigger immediately.")
        # A stop-market order fills at its stop: reserve for the dearer of the stop and the market.
        reserve_px = price if price is not None else max(market_price, stop_price or market_price)
        need_asset, need = (spec.quote, reserve_px * qty) if side == "BUY" else (spec.base, qty)
        if account.balance(need_asset) < need:
            raise BinanceError(*INSUFFICIENT_BALANCE)
        order = Order(
            spec.symbol,
            next(self._order_ids),
            client_id,
            side,
            type_,
            tif,
            price if price is not None else Decimal(0),
            qty,
            stop_price,
            now,
            update_time=now,
        )
        account.orders[order.order_id] = order
        if type_ == "MARKET":
            self._fill(account, spec, order, market_price, now)
            return order
        if type_ == "LIMIT" and self._crosses(side, price, market_price):
            self._fill(account, spec, order, market_price, now)
            return order
        if tif in ("IOC", "FOK") and type_ == "LIMIT":
            order.status = "EXPIRED"
            return order
        account.move(need_asset, -need, need)
        order.reserved_asset, order.reserved = need_asset, need
        account.open[order.order_id] = order
        return order

    def place_oco(
        self,
        account: Account,
        spec: SymbolSpec,
        *,
        side: str,
        qty: Decimal,
        above: OcoLeg,
        below: OcoLeg,
        list_client_id: str,
        market_price: Decimal,
        now: int,
    ) -> OrderList:
        """Validate an OCO, reserve once for both legs, and put both legs on the book.

        Checked in this order: which kind of leg may be above and below, duplicate ids, each leg's filters
        (as for a single order), the price relationship with the last price, then the balance. A SELL
        reserves ``qty`` of the base asset once (so an OCO for the whole free balance is accepted); a BUY
        reserves the quote asset for the dearer leg. Raises BinanceError when rejected."""
        check_oco_sides(side, above.type, below.type)
        if any(lst.client_id == list_client_id and lst.status == "EXECUTING" for lst in account.lists.values()):
            raise BinanceError(*DUPLICATE_ORDER)
        leg_ids = (above.client_id, below.client_id)
        if above.client_id == below.client_id or any(
            o.symbol == spec.symbol and o.client_order_id in leg_ids for o in account.open.values()
        ):
            raise BinanceError(*DUPLICATE_ORDER)
        for leg in (above, below):
            check_filters(spec, leg.price, qty, market_price)
        # Binance's rule, strict on both sides: SELL take-profit/limit price > last > stop-loss stopPrice, and
        # the mirror for BUY. Each leg is checked at the price(s) that make it act: a LIMIT_MAKER at its
        # price, a stop-market at its stopPrice, a TAKE_PROFIT_LIMIT at both its price and its stopPrice (our
        # choice: a stop already past the last price would trigger at once), a STOP_LOSS_LIMIT at its
        # stopPrice (its limit price may sit anywhere, as on Binance).
        if not (
            all(px > market_price for px in _acting_prices(above))
            and all(px < market_price for px in _acting_prices(below))
        ):
            raise BinanceError(*BAD_PRICE_RELATIONSHIP)
        if side == "BUY":
            # A stop-market leg fills at its stop, a limit leg at its price: reserve for the dearer of the two.
            need_asset = spec.quote
            need = (
                max(
                    leg.price if leg.price is not None else max(market_price, leg.stop_price or market_price)
                    for leg in (above, below)
                )
                * qty
            )
        else:
            need_asset, need = spec.base, qty
        if account.balance(need_asset) < need:
            raise BinanceError(*INSUFFICIENT_BALANCE)
        lst = OrderList(
            next(self._list_ids), list_client_id, spec.symbol, [], now, reserved_asset=need_asset, reserved=need
        )
        for leg in (below, above) if side == "SELL" else (above, below):  # the stop-loss leg first
            order = Order(
                spec.symbol,
                next(self._order_ids),
                leg.client_id,
                side,
                leg.type,
                leg.tif,
                leg.price if leg.price is not None else Decimal(0),
                qty,
                leg.stop_price,
                now,
                update_time=now,
                order_list_id=lst.order_list_id,
            )
            account.orders[order.order_id] = order
            account.open[order.order_id] = order
            lst.legs.append(order)
        account.move(need_asset, -need, need)
        account.lists[lst.order_list_id] = lst
        return lst

    @staticmethod
    def _triggers(type_: str, side: str, low: Decimal, high: Decimal, stop: Decimal) -> bool:
        """Stop-loss sells and take-profit buys trigger on a fall to the stop; the others on a rise."""
        falls = type_.startswith("STOP_LOSS") == (side == "SELL")
        return low <= stop if falls else high >= stop

    @staticmethod
    def _crosses(side: str, limit: Decimal | None, trade_price: Decimal) -> bool:
        if limit is None:
            return False
        return trade_price <= limit if side == "BUY" else trade_price >= limit

    def _fill(
        self, account: Account, spec: SymbolSpec, order: Order, price: Decimal, now: int, reserved: Decimal = Decimal(0)
    ) -> None:
        qty = order.orig_qty
        quote = price * qty
        if order.side == "BUY":
            fee = (qty * COMMISSION).quantize(Decimal(1).scaleb(-8))
            account.move(spec.quote, -quote + reserved, -reserved)
            account.move(spec.base, qty - fee)
            fee_asset = spec.base
        else:
            fee = (quote * COMMISSION).quantize(Decimal(1).scaleb(-8))
            account.move(spec.base, -qty + reserved, -reserved)
            account.move(spec.quote, quote - fee)
            fee_asset = spec.quote
        order.fills.append(Fill(price, qty, fee, fee_asset, next(self._trade_ids)))
        order.executed_qty = qty
        order.cumm_quote = quote
        order.status = "FILLED"
        order.update_time = now
        account.open.pop(order.order_id, None)

    def cancel(self, account: Account, spec: SymbolSpec, order: Order, now: int) -> None:
        """Cancel a resting order and release what it reserved; -2011 when it is not open. Cancelling a leg
        of an executing OCO cancels the whole list, as on Binance."""
        if order.status not in OPEN_STATUSES:
            raise BinanceError(*UNKNOWN_ORDER)
        lst = account.active_list(order)
        if lst is not None:
            self.cancel_list(account, lst, now)
            return
        self._release(account, order)
        order.status = "CANCELED"
        order.update_time = now
        account.open.pop(order.order_id, None)

    @staticmethod
    def _release(account: Account, holder: Order | OrderList) -> None:
        """Give back what an order (or an order list, for both its legs) reserved."""
        account.move(holder.reserved_asset, holder.reserved, -holder.reserved)
        holder.reserved = Decimal(0)

    @staticmethod
    def cancel_list(account: Account, lst: OrderList, now: int) -> None:
        """Cancel both legs of an executing OCO and release its one reservation; -2011 "Unknown order list
        sent." once the list is done (a leg won, or it was cancelled already)."""
        if lst.status != "EXECUTING":
            raise BinanceError(*UNKNOWN_ORDER_LIST)
        for leg in lst.legs:
            leg.status = "CANCELED"
            leg.update_time = now
            account.open.pop(leg.order_id, None)
        OrderBook._release(account, lst)
        lst.status = "ALL_DONE"
        lst.transaction_time = now

    def on_trades(
        self, specs: dict[str, SymbolSpec], symbol: str, low: Decimal, high: Decimal, last: Decimal, now: int
    ) -> None:
        """Fill resting orders that the market's prints (``low``..``high``) crossed.

        Executing OCOs are settled first (``_settle_list``): the leg the prints reached wins and the other
        expires; the winner then goes through the matching below like any order, so a stop-market or
        LIMIT_MAKER leg fills in this same pass and a *_LIMIT leg triggers and rests as a limit."""
        spec = specs[symbol]
        for account in self.accounts.values():
            list_ids = {o.order_list_id for o in account.open.values() if o.symbol == symbol and o.order_list_id >= 0}
            for list_id in sorted(list_ids):
                lst = account.lists[list_id]
                if lst.status == "EXECUTING":
                    self._settle_list(account, lst, low, high, now)
            for order in list(account.open.values()):
                if order.symbol != symbol or account.active_list(order) is not None:
                    continue
                if order.type in STOP_TYPES and not order.triggered:
                    stop = order.stop_price or Decimal(0)
                    if self._triggers(order.type, order.side, low, high, stop):
                        order.triggered = True
                        if not order.type.endswith("_LIMIT"):
                            self._fill(account, spec, order, stop, now, reserved=order.reserved)
                            continue
                    else:
                        continue
                if order.type in (*RESTING_TYPES, "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
                    touched = low <= order.price if order.side == "BUY" else high >= order.price
                    if touched:
                        self._fill(account, spec, order, order.price, now, reserved=order.reserved)

    def _settle_list(self, account: Account, lst: OrderList, low: Decimal, high: Decimal, now: int) -> None:
        """If the prints reached a leg of ``lst``: that leg wins and takes the list's reservation, the other
        leg is EXPIRED (what Binance reports for the other leg of an OCO), and the list is ALL_DONE.

        When one emission reaches both legs (low <= the stop-loss, high >= the take-profit) we cannot tell
        which print came first; the stop-loss wins, the conservative outcome for the account."""
        stop_leg, other = lst.legs
        if self._reached(stop_leg, low, high):
            winner, loser = stop_leg, other
        elif self._reached(other, low, high):
            winner, loser = other, stop_leg
        else:
            return
        loser.status = "EXPIRED"
        loser.update_time = now
        account.open.pop(loser.order_id, None)
        winner.reserved_asset, winner.reserved = lst.reserved_asset, lst.reserved  # moved, not released: once
        lst.reserved = Decimal(0)
        lst.status = "ALL_DONE"
        lst.transaction_time = now

    def _reached(self, order: Order, low: Decimal, high: Decimal) -> bool:
        """Whether prints from ``low`` to ``high`` trigger a stop leg or touch a LIMIT_MAKER leg's price."""
        if order.type in STOP_TYPES:
            return self._triggers(order.type, order.side, low, high, order.stop_price or Decimal(0))
        return low <= order.price if order.side == "BUY" else high >= order.price


def check_oco_sides(side: str, above_type: str, below_type: str) -> None:
    """Binance's -11xx errors for a leg of the wrong kind on the wrong side: a SELL OCO has its stop-loss
    below and its limit/take-profit above, a BUY OCO the reverse."""
    for position, type_ in (("above", above_type), ("below", below_type)):
        kind = "limit" if type_ == "LIMIT_MAKER" else "stop_loss" if type_.startswith("STOP_LOSS") else "take_profit"
        error = OCO_LEG_SIDE.get((side, position, kind))
        if error is not None:
            raise BinanceError(*error)


def _acting_prices(leg: OcoLeg) -> list[Decimal]:
    """The prices at which an OCO leg acts (see the price-relationship check in ``place_oco``)."""
    prices = [] if leg.type in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT") else [leg.price]
    if leg.type != "LIMIT_MAKER":
        prices.append(leg.stop_price)
    return [p for p in prices if p is not None]
