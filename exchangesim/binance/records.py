"""What the account book keeps: accounts (balances per API key), their orders and fills, and OCO order
lists, as Binance reports them; plus the order types and statuses it speaks of.

Plain records: the book (accounts.py) decides what happens to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
RESTING_TYPES = ("LIMIT", "LIMIT_MAKER")
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
ORDER_TYPES = ("LIMIT", "MARKET", "LIMIT_MAKER", *STOP_TYPES)
OCO_TYPES = ("LIMIT_MAKER", *STOP_TYPES)  # what aboveType/belowType accept; LIMIT and MARKET are -1158


@dataclass(slots=True)
class Fill:
    """One execution of an order, with its commission."""

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
    order_list_id: int = -1  # the OCO this order is a leg of; -1 for an ordinary order


@dataclass(slots=True)
class OcoLeg:
    """One leg of an OCO request, parsed: ``price`` is None for the stop-market types."""

    type: str
    price: Decimal | None
    stop_price: Decimal | None
    tif: str | None
    client_id: str


@dataclass(slots=True)
class OrderList:
    """One OCO as Binance reports it. Its two legs share ONE reservation, held here (the legs reserve
    nothing) until a leg wins: then the reservation moves to that leg, or is released on a cancel."""

    order_list_id: int
    client_id: str
    symbol: str
    legs: list[Order]  # the stop-loss leg first, then the other (the order Binance lists them in)
    transaction_time: int
    status: str = "EXECUTING"  # listOrderStatus: EXECUTING, then ALL_DONE
    reserved_asset: str = ""
    reserved: Decimal = Decimal(0)

    @property
    def status_type(self) -> str:
        """listStatusType: EXEC_STARTED while the legs work, ALL_DONE once one won or both were canceled."""
        return "EXEC_STARTED" if self.status == "EXECUTING" else "ALL_DONE"


@dataclass(slots=True)
class Account:
    """Balances (free, locked) of one API key and its orders."""

    api_key: str
    secret: str
    free: dict[str, Decimal]
    locked: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    open: dict[int, Order] = field(default_factory=dict)  # the resting subset of ``orders``
    lists: dict[int, OrderList] = field(default_factory=dict)  # every OCO, by orderListId

    def balance(self, asset: str) -> Decimal:
        """The free balance of ``asset``."""
        return self.free.get(asset, Decimal(0))

    def move(self, asset: str, delta_free: Decimal, delta_locked: Decimal = Decimal(0)) -> None:
        """Change the free and locked balances of ``asset`` by these amounts."""
        self.free[asset] = self.free.get(asset, Decimal(0)) + delta_free
        self.locked[asset] = self.locked.get(asset, Decimal(0)) + delta_locked

    def by_client_id(self, symbol: str, client_id: str) -> Order | None:
        """The newest order with this client id (ids may be reused once an order is done)."""
        for o in reversed(self.orders.values()):
            if o.symbol == symbol and o.client_order_id == client_id:
                return o
        return None

    def list_by_client_id(self, client_id: str) -> OrderList | None:
        """The newest order list with this listClientOrderId (reusable once the list is done)."""
        for lst in reversed(self.lists.values()):
            if lst.client_id == client_id:
                return lst
        return None

    def active_list(self, order: Order) -> OrderList | None:
        """The OCO ``order`` is a leg of, while that list is still executing."""
        lst = self.lists.get(order.order_list_id) if order.order_list_id >= 0 else None
        return lst if lst is not None and lst.status == "EXECUTING" else None
