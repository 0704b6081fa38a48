"""Spot accounts and orders: balances per API key, filters, MARKET and resting orders.

Pure bookkeeping over Decimals; the HTTP layer (signed.py) parses and signs, this decides.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal

from ..symbols import USD_PRICES, SymbolSpec
from .errors import DUPLICATE_ORDER, INSUFFICIENT_BALANCE, UNKNOWN_ORDER, BinanceError
from .wire import fmt

COMMISSION = Decimal("0.001")
MAX_PRICE_FACTOR = 1000
MAX_QTY = Decimal(9000)
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
RESTING_TYPES = ("LIMIT", "LIMIT_MAKER")
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
ORDER_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER", *STOP_TYPES)


def min_notional(spec: SymbolSpec) -> Decimal:
    """Five dollars' worth of the quote asset, Binance's usual NOTIONAL minimum."""
    usd = USD_PRICES.get(spec.quote, 1.0)
    return Decimal(str(round(5 / usd, 8))).normalize()


def symbol_filters(spec: SymbolSpec) -> list[dict[str, object]]:
    """PRICE_FILTER, LOT_SIZE, NOTIONAL (and MARKET_LOT_SIZE) for exchangeInfo and order checks."""
    max_price = max(1, int(spec.start_price * MAX_PRICE_FACTOR)) * spec.price_scale
    return [
        {"filterType": "PRICE_FILTER", "minPrice": fmt(1, spec.price_dp), "maxPrice": fmt(max_price, spec.price_dp),
         "tickSize": fmt(1, spec.price_dp)},
        {"filterType": "LOT_SIZE", "minQty": fmt(1, spec.qty_dp), "maxQty": fmt(int(MAX_QTY) * spec.qty_scale,
         spec.qty_dp), "stepSize": fmt(1, spec.qty_dp)},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": fmt(int(MAX_QTY) * spec.qty_scale,
         spec.qty_dp), "stepSize": "0.00000000"},
        {"filterType": "NOTIONAL", "minNotional": fmt(int(min_notional(spec).scaleb(8)), 8),
         "applyMinToMarket": True, "maxNotional": "9000000.00000000", "applyMaxToMarket": False,
         "avgPriceMins": 5},
    ]


@dataclass(slots=True)
class Fill:
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    trade_id: int


@dataclass(slots=True)
class Order:
    """One order as Binance reports it."""

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str | None
    price: Decimal
    orig_qty: Decimal
    stop_price: Decimal | None
    time: int
    status: str = "NEW"
    executed_qty: Decimal = Decimal(0)
    cumm_quote: Decimal = Decimal(0)
    update_time: int = 0
    fills: list[Fill] = field(default_factory=list)
    triggered: bool = False
    reserved_asset: str = ""
    reserved: Decimal = Decimal(0)


@dataclass(slots=True)
class Account:
    """Balances (free, locked) of one API key and its orders."""

    api_key: str
    secret: str
    free: dict[str, Decimal]
    locked: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    open: dict[int, Order] = field(default_factory=dict)  # the resting subset of ``orders``

    def balance(self, asset: str) -> Decimal:
        return self.free.get(asset, Decimal(0))

    def move(self, asset: str, delta_free: Decimal, delta_locked: Decimal = Decimal(0)) -> None:
        self.free[asset] = self.free.get(asset, Decimal(0)) + delta_free
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + delta_locked

    def by_client_id(self, symbol: str, client_id: str) -> Order | None:
        """The newest order with this client id (ids may be reused once an order is done)."""
        for o in reversed(self.orders.values()):
            if o.symbol == symbol and o.client_order_id == client_id:
                return o
        return None


class OrderBook:
    """Every account, order ids, and the matching of orders against the market's prints."""

    def __init__(self, keys: dict[str, str], balances: dict[str, Decimal]) -> None:
        self.accounts = {k: Account(k, s, dict(balances)) for k, s in keys.items()}
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)

    def check_filters(self, spec: SymbolSpec, price: Decimal | None, qty: Decimal, market_price: Decimal) -> None:
        """Binance's -1013 filter failures, in its order: price, lot size, notional."""
        tick, step = spec.tick_size, spec.step_size
        if price is not None and (price < tick or price > Decimal(int(spec.start_price * MAX_PRICE_FACTOR) or 1)
                                  or price % tick != 0):
            raise BinanceError(-1013, "Filter failure: PRICE_FILTER")
        if qty < step or qty > MAX_QTY or qty % step != 0:
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        if (price if price is not None else market_price) * qty < min_notional(spec):
            raise BinanceError(-1013, "Filter failure: NOTIONAL")

    def place(self, account: Account, spec: SymbolSpec, *, side: str, type_: str, qty: Decimal,
              price: Decimal | None, stop_price: Decimal | None, tif: str | None, client_id: str,
              market_price: Decimal, now: int) -> Order:
        """Validate, reserve funds, and fill what can fill now. Raises BinanceError when rejected."""
        if any(o.symbol == spec.symbol and o.client_order_id == client_id for o in account.open.values()):
            raise BinanceError(*DUPLICATE_ORDER)
        self.check_filters(spec, price, qty, market_price)
        if type_ == "LIMIT_MAKER" and price is not None and (
                (side == "BUY" and price >= market_price) or (side == "SELL" and price <= market_price)):
            raise BinanceError(-2010, "Order would immediately match and take.")
        if type_ in STOP_TYPES and stop_price is not None and self._triggers(type_, side, market_price, market_price,
                                                                              stop_price):
            raise BinanceError(-2010, "Stop price would trigger immediately.")
        # A stop-market order fills at its stop: reserve for the dearer of the stop and the market.
        reserve_px = price if price is not None else max(market_price, stop_price or market_price)
        need_asset, need = (spec.quote, reserve_px * qty) if side == "BUY" else (spec.base, qty)
        if account.balance(need_asset) < need:
            raise BinanceError(*INSUFFICIENT_BALANCE)
        order = Order(spec.symbol, next(self._order_ids), client_id, side, type_, tif,
                      price if price is not None else Decimal(0), qty, stop_price, now, update_time=now)
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

    def _fill(self, account: Account, spec: SymbolSpec, order: Order, price: Decimal, now: int,
              reserved: Decimal = Decimal(0)) -> None:
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
        """Cancel a resting order and release what it reserved; -2011 when it is not open."""
        if order.status not in OPEN_STATUSES:
            raise BinanceError(*UNKNOWN_ORDER)
        self._release(account, order)
        order.status = "CANCELED"
        order.update_time = now
        account.open.pop(order.order_id, None)

    @staticmethod
    def _release(account: Account, order: Order) -> None:
        account.move(order.reserved_asset, order.reserved, -order.reserved)
        order.reserved = Decimal(0)

    def on_trades(self, specs: dict[str, SymbolSpec], symbol: str, low: Decimal, high: Decimal, last: Decimal,
                  now: int) -> None:
        """Fill resting orders that the market's prints (``low``..``high``) crossed."""
        spec = specs[symbol]
        for account in self.accounts.values():
            for order in list(account.open.values()):
                if order.symbol != symbol:
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
