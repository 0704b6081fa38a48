"""The trading records as the live page and the API show them, and the channel group they are pushed on.

The stream process sends ``{"type": "orders.update", "data": {"positions": [...], "orders": [...]}}`` to
``ORDERS_GROUP`` whenever positions or orders change (a fill, a stop, a new unrealised PnL); the live page's
consumer relays it. Decimals travel as strings, times as epoch milliseconds (UTC).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from markets.documents import to_ms

from .models import Order, Position

ORDERS_GROUP = "orders"
ORDERS_EVENT = "orders.update"
# How the page prints each decimal (``markets.places.priced``): to the instrument's tick ("price": prices and quote
# amounts), to its step ("qty"), or its own digits without trailing zeros (None: profit and loss).
POSITION_NUMBERS = {
    "qty": "qty",
    "entry_price": "price",
    "stop_price": "price",
    "take_profit_price": "price",
    "last_price": "price",
    "fees": "price",
    "exit_price": "price",
    "unrealised_pnl": None,
    "realised_pnl": None,
}
ORDER_NUMBERS = {
    "qty": "qty",
    "price": "price",
    "stop_price": "price",
    "executed_qty": "qty",
    "avg_price": "price",
    "fee": "price",
}


def orders_update(positions: Iterable[Position], orders: Iterable[Order]) -> dict[str, Any]:
    """The one ``orders.update`` event, for ``ORDERS_GROUP``: the positions and orders that changed."""
    return {
        "type": ORDERS_EVENT,
        "data": {"positions": [position_data(p) for p in positions], "orders": [order_data(o) for o in orders]},
    }


def _ms(t: datetime | None) -> int | None:
    return None if t is None else int(to_ms(t))


def _s(value: object) -> str | None:
    return None if value is None else f"{value:f}" if hasattr(value, "as_tuple") else str(value)


def position_data(p: Position) -> dict[str, Any]:
    return {
        "id": str(p.pk),
        "mode": p.mode,
        "exchange": p.exchange,
        "symbol": p.symbol,
        "status": p.status,
        "qty": _s(p.qty),
        "entry_price": _s(p.entry_price),
        "stop_price": _s(p.stop_price),
        "take_profit_price": _s(p.take_profit_price),
        "last_price": _s(p.last_price),
        "fees": _s(p.fees),
        "unrealised_pnl": _s(p.unrealised_pnl),
        "realised_pnl": _s(p.realised_pnl),
        "exit_price": _s(p.exit_price),
        "exit_reason": p.exit_reason,
        "opened_at": _ms(p.opened_at),
        "closed_at": _ms(p.closed_at),
        "updated_at": _ms(p.updated_at),
        "entry_client_order_id": p.entry_client_order_id,
    }


def order_data(o: Order) -> dict[str, Any]:
    return {
        "id": str(o.pk),
        "client_order_id": o.client_order_id,
        "mode": o.mode,
        "exchange": o.exchange,
        "symbol": o.symbol,
        "side": o.side,
        "type": o.type,
        "purpose": o.purpose,
        "status": o.status,
        "qty": _s(o.qty),
        "price": _s(o.price),
        "stop_price": _s(o.stop_price),
        "executed_qty": _s(o.executed_qty),
        "avg_price": _s(o.avg_price),
        "fee": _s(o.fee),
        "reason": o.reason,
        "exchange_order_id": o.exchange_order_id,
        "position_id": str(o.position_id) if o.position_id else None,
        "created_at": _ms(o.created_at),
        "updated_at": _ms(o.updated_at),
    }
