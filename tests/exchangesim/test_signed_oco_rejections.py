"""OCO order lists refused as Binance refuses them: legs of the wrong kind or side, missing or malformed
parameters, prices in the wrong relationship, duplicate ids, and lists that are not there (-2011).
"""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest

from exchangesim.server import Simulator
from tests.exchangesim.oco_client import OCO, account_of, away, sell_oco
from tests.exchangesim.test_signed import call, last_price


@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({"abovePrice": "PX*0.99"}, -2010, "The relationship of the prices for the orders is not correct."),
        ({"belowStopPrice": "PX*1.01"}, -2010, "The relationship of the prices for the orders is not correct."),
        (
            {"aboveType": "TAKE_PROFIT", "aboveStopPrice": "PX*0.99"},
            -2010,
            "The relationship of the prices for the orders is not correct.",
        ),
        (
            {"belowStopPrice": None},
            -1102,
            "Mandatory parameter 'belowStopPrice' was not sent, was empty/null, or malformed.",
        ),
        ({"aboveType": None}, -1102, "Mandatory parameter 'aboveType' was not sent, was empty/null, or malformed."),
        ({"quantity": None}, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."),
        (
            {"aboveType": "TAKE_PROFIT_LIMIT"},
            -1102,
            "Mandatory parameter 'aboveTimeInForce' was not sent, was empty/null, or malformed.",
        ),
        ({"quantity": "3"}, -2010, "Account has insufficient balance for requested action."),
        ({"quantity": "0.000001"}, -1013, "Filter failure: LOT_SIZE"),
        ({"abovePrice": "PX*1.05+0.001"}, -1013, "Filter failure: PRICE_FILTER"),
        ({"aboveType": "LIMIT"}, -1158, "Order type not supported in OCO."),
        ({"aboveType": "ICEBERG"}, -1116, "Invalid orderType."),
        ({"belowType": "LIMIT_MAKER", "belowPrice": "PX*0.95"}, -1166, "A limit order in a sell OCO must be above."),
        (
            {"aboveType": "STOP_LOSS", "aboveStopPrice": "PX*1.05"},
            -1197,
            "A stop loss order in a sell OCO must be below.",
        ),
        ({"belowType": "TAKE_PROFIT"}, -1199, "A take profit order in a sell OCO must be above."),
        ({"side": "BUY"}, -1165, "A limit order in a buy OCO must be below."),
        ({"listClientOrderId": "bad id!"}, -1100, None),
    ],
)
async def test_oco_rejections(sim: Simulator, params: dict[str, str | None], code: int, msg: str | None) -> None:
    """Invalid OCOs are rejected with Binance's code and message, and place nothing and lock nothing."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        body = sell_oco(px, Decimal("0.1"))
        for k, v in params.items():
            if v is None:
                body.pop(k)
            elif v.startswith("PX*"):
                factor, _, extra = v[3:].partition("+")
                body[k] = str(away(px, factor) + Decimal(extra or 0))
            else:
                body[k] = v
        status, got = await call(s, sim, "POST", OCO, body)
    assert status == 400
    assert got["code"] == code, got
    if msg is not None:
        assert got["msg"] == msg
    acct = account_of(sim)
    assert not acct.orders
    assert not acct.lists
    assert (acct.free["BTC"], acct.locked.get("BTC", 0)) == (2, 0)


async def test_duplicate_ids_and_unknown_lists(sim: Simulator) -> None:
    """A listClientOrderId of an executing list, or a leg id of an open order, is -2010 "Duplicate order sent.";
    unknown lists are -2013 on query and -2011 on cancel; a query naming no list is -1128."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        status, first = await call(
            s, sim, "POST", OCO, sell_oco(px, Decimal("0.1"), listClientOrderId="dup", aboveClientOrderId="leg-a")
        )
        assert status == 200, first
        duplicate = (400, {"code": -2010, "msg": "Duplicate order sent."})
        assert await call(s, sim, "POST", OCO, sell_oco(px, Decimal("0.1"), listClientOrderId="dup")) == duplicate
        assert await call(s, sim, "POST", OCO, sell_oco(px, Decimal("0.1"), belowClientOrderId="leg-a")) == duplicate
        assert (
            await call(
                s, sim, "POST", OCO, sell_oco(px, Decimal("0.1"), aboveClientOrderId="same", belowClientOrderId="same")
            )
            == duplicate
        )
        status, single = await call(
            s,
            sim,
            "POST",
            "/api/v3/order",
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.1",
                "price": str(away(px, "1.2")),
                "newClientOrderId": "leg-a",
            },
        )
        assert (status, single) == duplicate  # a single order may not take a leg's id either
        assert len(account_of(sim).orders) == 2
        assert account_of(sim).locked["BTC"] == Decimal("0.1")

        status, body = await call(s, sim, "GET", "/api/v3/orderList", {"orderListId": 999})
        assert (status, body) == (400, {"code": -2013, "msg": "Order list does not exist."})
        status, body = await call(s, sim, "GET", "/api/v3/orderList", {"origClientOrderId": "nope"})
        assert (status, body["code"]) == (400, -2013)
        status, body = await call(s, sim, "GET", "/api/v3/orderList", {})
        assert (status, body["code"]) == (400, -1128)
        status, body = await call(s, sim, "DELETE", "/api/v3/orderList", {"symbol": "BTCUSDT", "orderListId": 999})
        assert (status, body) == (400, {"code": -2011, "msg": "Unknown order list sent."})
        status, body = await call(
            s, sim, "DELETE", "/api/v3/orderList", {"symbol": "ETHUSDT", "orderListId": first["orderListId"]}
        )
        assert (status, body["code"]) == (400, -2011)  # the list is on another symbol
        status, body = await call(s, sim, "DELETE", "/api/v3/orderList", {"symbol": "BTCUSDT"})
        assert (status, body["code"]) == (400, -1102)
