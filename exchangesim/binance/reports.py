"""Orders and OCO order lists as the signed endpoints answer them: the ACK/RESULT/FULL shapes of a new order,
the status of a queried one, a cancel's answer, an order list, and the order-count headers."""

from __future__ import annotations

from decimal import Decimal

from .records import Account, Order, OrderList

DAY_MS = 86_400_000


def d8(value: Decimal) -> str:
    """``value`` with 8 decimal places, as Binance writes balances, prices and quantities."""
    return f"{value.quantize(Decimal('0.00000001')):f}"


def order_counts(account: Account, now: int) -> dict[str, str]:
    """``X-MBX-ORDER-COUNT-10S`` / ``-1D``: this key's orders in the last 10 s and this UTC day."""
    times = [o.time for o in account.orders.values()]
    day = now // DAY_MS * DAY_MS
    return {
        "X-MBX-ORDER-COUNT-10S": str(sum(t > now - 10_000 for t in times)),
        "X-MBX-ORDER-COUNT-1D": str(sum(t >= day for t in times)),
    }


def order_result(o: Order) -> dict[str, object]:
    """The RESULT shape of an order (what the other shapes build on)."""
    body: dict[str, object] = {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": o.order_list_id,
        "clientOrderId": o.client_order_id,
        "transactTime": o.update_time,
        "price": d8(o.price),
        "origQty": d8(o.orig_qty),
        "executedQty": d8(o.executed_qty),
        "origQuoteOrderQty": "0.00000000",
        "cummulativeQuoteQty": d8(o.cumm_quote),
        "status": o.status,
        "timeInForce": o.time_in_force or "GTC",
        "type": o.type,
        "side": o.side,
        "workingTime": o.time,
        "selfTradePreventionMode": "NONE",
    }
    if o.stop_price is not None:
        body["stopPrice"] = d8(o.stop_price)
    return body


def order_response(o: Order, resp_type: str) -> dict[str, object]:
    """A new order's answer in the ``newOrderRespType`` asked for: ACK, RESULT, or FULL (RESULT with fills)."""
    ack = {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": o.order_list_id,
        "clientOrderId": o.client_order_id,
        "transactTime": o.time,
    }
    if resp_type == "ACK":
        return ack
    body = order_result(o)
    if resp_type == "FULL":
        body["fills"] = [
            {
                "price": d8(f.price),
                "qty": d8(f.qty),
                "commission": d8(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in o.fills
        ]
    return body


def order_status(o: Order) -> dict[str, object]:
    """An order as GET /api/v3/order, openOrders and allOrders report it."""
    body = order_result(o)
    body.pop("transactTime")
    body.update(
        {
            "icebergQty": "0.00000000",
            "time": o.time,
            "updateTime": o.update_time,
            "isWorking": o.status in ("NEW", "PARTIALLY_FILLED") or o.status == "FILLED",
            "origQuoteOrderQty": "0.00000000",
        }
    )
    if "stopPrice" not in body:
        body["stopPrice"] = "0.00000000"
    return body


def cancel_result(o: Order) -> dict[str, object]:
    """A cancelled order as DELETE answers it: its own id as ``origClientOrderId``, the cancel's as
    ``clientOrderId``."""
    body = order_result(o)
    body["origClientOrderId"] = body.pop("clientOrderId")
    body["clientOrderId"] = "cancel" + str(o.order_id)
    return body


def list_status(lst: OrderList) -> dict[str, object]:
    """An order list as Binance reports it; ``transactionTime`` is that of its latest change of status."""
    return {
        "orderListId": lst.order_list_id,
        "contingencyType": "OCO",
        "listStatusType": lst.status_type,
        "listOrderStatus": lst.status,
        "listClientOrderId": lst.client_id,
        "transactionTime": lst.transaction_time,
        "symbol": lst.symbol,
        "orders": [{"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id} for o in lst.legs],
    }
