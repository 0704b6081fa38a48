"""OCO order lists (orderList/oco, orderList GET/DELETE, openOrderList) and allOrders: one shared reservation,
the leg the market reaches wins and the other expires, Binance's codes for what is rejected.

Matching is driven deterministically by calling the order book's ``on_trades`` with chosen prints (legs sit
5 % away from the market, far beyond what the random walk covers during a test), and once end to end through
real prints made to jump by the ``/_sim/venue/outlier`` control.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import pytest
import yarl
from binance import Client
from binance.exceptions import BinanceAPIException

from exchangesim.binance.accounts import Account
from exchangesim.server import Simulator
from tests.conftest import API_KEY, API_SECRET, sim_config
from tests.exchangesim.test_signed import call, last_price, sign, sim_market

TICK = Decimal("0.01")  # BTCUSDT's tick size
FEE = Decimal("0.001")
OCO = "/api/v3/orderList/oco"


@pytest.fixture
async def no_btc_sim() -> AsyncIterator[Simulator]:
    """A simulator whose account holds no BTC: what a market BUY brings is the whole free base balance."""
    async with Simulator(sim_config(balances={"USDT": Decimal(100_000), "BTC": Decimal(0)})) as s:
        yield s


def account_of(sim: Simulator) -> Account:
    return sim.binance.orders.accounts[API_KEY]


def prints(sim: Simulator, low: Decimal, high: Decimal) -> None:
    """The market printed from ``low`` to ``high`` on BTCUSDT: match the resting orders against that."""
    venue = sim.binance
    venue.orders.on_trades(venue.specs, "BTCUSDT", low, high, high, venue.server_time())


def away(px: Decimal, factor: str) -> Decimal:
    return (px * Decimal(factor)).quantize(TICK)


def sell_oco(px: Decimal, qty: Decimal, **params: str) -> dict[str, str]:
    """A protective SELL: take-profit LIMIT_MAKER 5 % above the market, STOP_LOSS 5 % below."""
    return {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "quantity": str(qty),
        "aboveType": "LIMIT_MAKER",
        "abovePrice": str(away(px, "1.05")),
        "belowType": "STOP_LOSS",
        "belowStopPrice": str(away(px, "0.95")),
        **params,
    }


async def call_with_headers(
    s: aiohttp.ClientSession, sim: Simulator, method: str, path: str, params: dict
) -> tuple[int, object, dict[str, str]]:
    """``call`` (parameters signed in the query string), also returning the response headers."""
    payload = urlencode({**params, "timestamp": int(time.time() * 1000)})
    url = yarl.URL(f"{sim.url}{path}?{payload}&signature={sign(payload)}", encoded=True)
    async with s.request(method, url, headers={"X-MBX-APIKEY": API_KEY}) as r:
        return r.status, await r.json(), dict(r.headers)


async def order(s: aiohttp.ClientSession, sim: Simulator, **params: object) -> dict:
    status, body = await call(s, sim, "GET", "/api/v3/order", {"symbol": "BTCUSDT", **params})
    assert status == 200, body
    return body


async def order_list(s: aiohttp.ClientSession, sim: Simulator, **params: object) -> dict:
    status, body = await call(s, sim, "GET", "/api/v3/orderList", params)
    assert status == 200, body
    return body


async def test_sell_oco_for_the_whole_bought_quantity_then_the_stop_fills(no_btc_sim: Simulator) -> None:
    """A market BUY, then a SELL OCO for all of it: accepted with the base locked once; the legs are ordinary
    orders carrying the list id; a fall to the stop fills the stop-loss at its stop and expires the take-profit,
    releasing the reservation exactly once."""
    sim = no_btc_sim
    async with aiohttp.ClientSession() as s:
        status, bought = await call(
            s, sim, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
        )
        assert (status, bought["status"], bought["orderListId"]) == (200, "FILLED", -1)
        acct = account_of(sim)
        qty = acct.free["BTC"]
        assert qty == Decimal("0.01") - Decimal("0.01") * FEE  # the whole free base balance
        usdt_before = acct.free["USDT"]
        px = await last_price(s, sim)
        params = sell_oco(px, qty, listClientOrderId="bracket-1", aboveClientOrderId="tp-1", belowClientOrderId="sl-1")
        status, created, headers = await call_with_headers(s, sim, "POST", OCO, params)
        assert status == 200, created
        assert isinstance(created, dict)
        assert headers["X-MBX-ORDER-COUNT-10S"] == "3"  # the market BUY and the two legs
        assert list(created) == [
            "orderListId",
            "contingencyType",
            "listStatusType",
            "listOrderStatus",
            "listClientOrderId",
            "transactionTime",
            "symbol",
            "orders",
            "orderReports",
        ]
        list_id = created["orderListId"]
        assert (created["contingencyType"], created["listStatusType"], created["listOrderStatus"]) == (
            "OCO",
            "EXEC_STARTED",
            "EXECUTING",
        )
        assert created["listClientOrderId"] == "bracket-1"
        assert [o["clientOrderId"] for o in created["orders"]] == ["sl-1", "tp-1"]  # the stop-loss leg first
        sl_id, tp_id = (o["orderId"] for o in created["orders"])
        reports = created["orderReports"]
        assert [(r["orderId"], r["orderListId"], r["type"], r["status"]) for r in reports] == [
            (sl_id, list_id, "STOP_LOSS", "NEW"),
            (tp_id, list_id, "LIMIT_MAKER", "NEW"),
        ]
        assert Decimal(reports[0]["stopPrice"]) == away(px, "0.95")
        assert "stopPrice" not in reports[1]
        assert acct.free["BTC"] == 0
        assert acct.locked["BTC"] == qty  # locked once for both legs

        by_id = await order(s, sim, orderId=sl_id)
        by_client_id = await order(s, sim, origClientOrderId="tp-1")
        assert (by_id["orderListId"], by_id["type"], by_id["status"]) == (list_id, "STOP_LOSS", "NEW")
        assert (by_client_id["orderId"], by_client_id["orderListId"]) == (tp_id, list_id)
        assert (await order(s, sim, orderId=bought["orderId"]))["orderListId"] == -1
        listed = await order_list(s, sim, orderListId=list_id)
        assert listed == await order_list(s, sim, origClientOrderId="bracket-1")
        assert {k: v for k, v in created.items() if k != "orderReports"} == listed
        _, open_orders = await call(s, sim, "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
        assert sorted(o["orderId"] for o in open_orders) == [sl_id, tp_id]
        _, open_lists = await call(s, sim, "GET", "/api/v3/openOrderList", {})
        assert [lst["orderListId"] for lst in open_lists] == [list_id]

        stop = away(px, "0.95")
        prints(sim, stop - TICK, px)
        sl, tp = await order(s, sim, orderId=sl_id), await order(s, sim, orderId=tp_id)
        assert (sl["status"], Decimal(sl["executedQty"])) == ("FILLED", qty)
        assert Decimal(sl["cummulativeQuoteQty"]) == stop * qty  # a stop-market leg fills at its stop
        assert tp["status"] == "EXPIRED"
        done = await order_list(s, sim, orderListId=list_id)
        assert (done["listStatusType"], done["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
        proceeds = stop * qty - (stop * qty * FEE).quantize(Decimal("0.00000001"))
        assert (acct.free["BTC"], acct.locked["BTC"]) == (0, 0)
        assert acct.free["USDT"] == usdt_before + proceeds
        prints(sim, stop - 100, away(px, "1.10"))  # the other leg is gone: nothing more happens
        assert (acct.free["BTC"], acct.locked["BTC"], acct.free["USDT"]) == (0, 0, usdt_before + proceeds)
        assert (await order(s, sim, orderId=tp_id))["status"] == "EXPIRED"
        _, open_lists = await call(s, sim, "GET", "/api/v3/openOrderList", {})
        assert open_lists == []
        status, again = await call(s, sim, "DELETE", "/api/v3/orderList", {"symbol": "BTCUSDT", "orderListId": list_id})
        assert (status, again) == (400, {"code": -2011, "msg": "Unknown order list sent."})


@pytest.mark.parametrize(
    ("above", "fill_at"),
    [
        ({"aboveType": "LIMIT_MAKER", "abovePrice": "1.05"}, "1.05"),
        ({"aboveType": "TAKE_PROFIT", "aboveStopPrice": "1.05"}, "1.05"),
        (
            {
                "aboveType": "TAKE_PROFIT_LIMIT",
                "aboveStopPrice": "1.04",
                "abovePrice": "1.05",
                "aboveTimeInForce": "GTC",
            },
            "1.05",
        ),
    ],
)
async def test_take_profit_leg_fills_and_the_stop_expires(sim: Simulator, above: dict[str, str], fill_at: str) -> None:
    """A rise to the take-profit (LIMIT_MAKER at its price, TAKE_PROFIT at its stop, TAKE_PROFIT_LIMIT
    triggered then filled at its price) fills that leg; the STOP_LOSS_LIMIT leg expires."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        acct = account_of(sim)
        btc, usdt = acct.free["BTC"], acct.free["USDT"]
        params = {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "quantity": "0.5",
            "belowType": "STOP_LOSS_LIMIT",
            "belowStopPrice": str(away(px, "0.95")),
            "belowPrice": str(away(px, "0.94")),
            "belowTimeInForce": "GTC",
            **{k: str(away(px, v)) if k.endswith("Price") else v for k, v in above.items()},
        }
        status, created = await call(s, sim, "POST", OCO, params, in_body=True)
        assert status == 200, created
        assert acct.locked["BTC"] == Decimal("0.5")
        sl_id, tp_id = (o["orderId"] for o in created["orders"])
        prints(sim, px, away(px, "1.06"))
        tp, sl = await order(s, sim, orderId=tp_id), await order(s, sim, orderId=sl_id)
        assert (tp["status"], sl["status"]) == ("FILLED", "EXPIRED")
        price = away(px, fill_at)
        assert Decimal(tp["cummulativeQuoteQty"]) == price * Decimal("0.5")
        assert (acct.free["BTC"], acct.locked["BTC"]) == (btc - Decimal("0.5"), 0)
        quote = price * Decimal("0.5")
        assert acct.free["USDT"] == usdt + quote - (quote * FEE).quantize(Decimal("0.00000001"))
        listed = await order_list(s, sim, orderListId=created["orderListId"])
        assert (listed["listStatusType"], listed["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")


async def test_prints_reaching_both_legs_fill_the_stop_loss(sim: Simulator) -> None:
    """One emission from below the stop to above the take-profit: the stop-loss wins (the conservative
    choice, since the order of the prints within an emission is unknown)."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        status, created = await call(s, sim, "POST", OCO, sell_oco(px, Decimal("0.1")))
        assert status == 200, created
        sl_id, tp_id = (o["orderId"] for o in created["orders"])
        prints(sim, away(px, "0.90"), away(px, "1.10"))
        assert (await order(s, sim, orderId=sl_id))["status"] == "FILLED"
        assert (await order(s, sim, orderId=tp_id))["status"] == "EXPIRED"
        assert account_of(sim).locked["BTC"] == 0


async def test_stop_loss_limit_leg_triggers_then_rests_as_a_limit(sim: Simulator) -> None:
    """A STOP_LOSS_LIMIT leg whose stop is crossed by prints below its limit price triggers (the other leg
    expires, the list is done) and rests with the reservation until the market comes back to its price."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        stop, limit = away(px, "0.95"), away(px, "0.94")
        status, created = await call(
            s,
            sim,
            "POST",
            OCO,
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "quantity": "0.2",
                "aboveType": "LIMIT_MAKER",
                "abovePrice": str(away(px, "1.05")),
                "belowType": "STOP_LOSS_LIMIT",
                "belowStopPrice": str(stop),
                "belowPrice": str(limit),
                "belowTimeInForce": "GTC",
            },
        )
        assert status == 200, created
        sl_id, tp_id = (o["orderId"] for o in created["orders"])
        acct = account_of(sim)
        prints(sim, limit - 50, limit - TICK)  # gapped through the stop and below the limit price
        sl, tp = await order(s, sim, orderId=sl_id), await order(s, sim, orderId=tp_id)
        assert (sl["status"], tp["status"]) == ("NEW", "EXPIRED")
        listed = await order_list(s, sim, orderListId=created["orderListId"])
        assert listed["listOrderStatus"] == "ALL_DONE"
        assert acct.locked["BTC"] == Decimal("0.2")  # now held by the triggered leg alone
        prints(sim, limit - TICK, limit)
        sl = await order(s, sim, orderId=sl_id)
        assert (sl["status"], Decimal(sl["cummulativeQuoteQty"])) == ("FILLED", limit * Decimal("0.2"))
        assert acct.locked["BTC"] == 0
        assert acct.free["BTC"] == Decimal(2) - Decimal("0.2")


async def test_buy_oco_reserves_for_the_dearer_leg(sim: Simulator) -> None:
    """A BUY OCO (STOP_LOSS above, LIMIT_MAKER below) locks quote for its dearer leg, the stop, once; a fall
    to the limit price fills the LIMIT_MAKER and expires the stop."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        stop, limit = away(px, "1.05"), away(px, "0.95")
        qty = Decimal("0.3")
        status, created = await call(
            s,
            sim,
            "POST",
            OCO,
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "quantity": str(qty),
                "aboveType": "STOP_LOSS",
                "aboveStopPrice": str(stop),
                "belowType": "LIMIT_MAKER",
                "belowPrice": str(limit),
            },
            in_body=True,
        )
        assert status == 200, created
        assert [r["type"] for r in created["orderReports"]] == ["STOP_LOSS", "LIMIT_MAKER"]
        acct = account_of(sim)
        assert acct.locked["USDT"] == stop * qty
        assert acct.free["USDT"] == Decimal(100_000) - stop * qty
        sl_id, lm_id = (o["orderId"] for o in created["orders"])
        prints(sim, limit - TICK, px)
        assert (await order(s, sim, orderId=lm_id))["status"] == "FILLED"
        assert (await order(s, sim, orderId=sl_id))["status"] == "EXPIRED"
        assert acct.locked["USDT"] == 0
        assert acct.free["USDT"] == Decimal(100_000) - limit * qty
        assert acct.free["BTC"] == Decimal(2) + qty - qty * FEE


async def test_cancel_the_list_or_one_leg_cancels_both(sim: Simulator) -> None:
    """DELETE orderList cancels both legs and releases the one reservation; DELETE order on one leg cancels
    the whole list the same way. A finished list cannot be cancelled again (-2011)."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        acct = account_of(sim)
        status, first = await call(s, sim, "POST", OCO, sell_oco(px, Decimal(2), listClientOrderId="b1"))
        assert status == 200, first
        assert (acct.free["BTC"], acct.locked["BTC"]) == (0, 2)
        status, cancelled = await call(
            s, sim, "DELETE", "/api/v3/orderList", {"symbol": "BTCUSDT", "listClientOrderId": "b1"}
        )
        assert status == 200, cancelled
        assert (cancelled["orderListId"], cancelled["listStatusType"], cancelled["listOrderStatus"]) == (
            first["orderListId"],
            "ALL_DONE",
            "ALL_DONE",
        )
        assert [(r["orderId"], r["status"], r["origClientOrderId"]) for r in cancelled["orderReports"]] == [
            (o["orderId"], "CANCELED", o["clientOrderId"]) for o in first["orders"]
        ]
        assert (acct.free["BTC"], acct.locked["BTC"]) == (2, 0)
        status, again = await call(
            s, sim, "DELETE", "/api/v3/orderList", {"symbol": "BTCUSDT", "orderListId": first["orderListId"]}
        )
        assert (status, again["code"]) == (400, -2011)

        status, second = await call(s, sim, "POST", OCO, sell_oco(px, Decimal(2), listClientOrderId="b1"))
        assert status == 200, second  # a list client id is reusable once its list is done
        tp_id = second["orders"][1]["orderId"]
        status, leg = await call(s, sim, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": tp_id})
        assert status == 200, leg
        assert (leg["orderId"], leg["status"], leg["orderListId"]) == (tp_id, "CANCELED", second["orderListId"])
        for o in second["orders"]:
            assert (await order(s, sim, orderId=o["orderId"]))["status"] == "CANCELED"
        assert (await order_list(s, sim, origClientOrderId="b1"))["listOrderStatus"] == "ALL_DONE"
        assert (acct.free["BTC"], acct.locked["BTC"]) == (2, 0)  # released once, not twice
        status, body = await call(
            s, sim, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": second["orders"][0]["orderId"]}
        )
        assert (status, body["code"]) == (400, -2011)


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


async def test_all_orders_lists_every_order_once(sim: Simulator) -> None:
    """allOrders: every order of the symbol (OCO legs included) once, by orderId, in GET order's shape;
    orderId/startTime/endTime/limit select as on Binance; weights 20 (allOrders) and 4 (orderList)."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
        await call(
            s, sim, "POST", "/api/v3/order", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
        )
        await call(
            s, sim, "POST", "/api/v3/order", {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.1"}
        )
        await call(
            s,
            sim,
            "POST",
            "/api/v3/order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": str(away(px, "0.5")),
            },
        )
        _, oco = await call(s, sim, "POST", OCO, sell_oco(px, Decimal("0.1")))
        await call(s, sim, "DELETE", "/api/v3/orderList", {"symbol": "BTCUSDT", "orderListId": oco["orderListId"]})
        status, everything = await call(s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"})
        assert status == 200, everything
        ids = [o["orderId"] for o in everything]
        assert ids == sorted(set(ids))
        assert len(ids) == 4
        assert [(o["type"], o["status"], o["orderListId"] == -1) for o in everything] == [
            ("MARKET", "FILLED", True),
            ("LIMIT", "NEW", True),
            ("STOP_LOSS", "CANCELED", False),
            ("LIMIT_MAKER", "CANCELED", False),
        ]
        assert everything[1] == await order(s, sim, orderId=ids[1])  # GET order's shape
        _, from_id = await call(
            s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "orderId": ids[1], "limit": 2}
        )
        assert [o["orderId"] for o in from_id] == ids[1:3]
        _, recent = await call(s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "limit": 2})
        assert [o["orderId"] for o in recent] == ids[2:]
        now = sim.binance.server_time()
        _, window = await call(
            s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "startTime": now - 60_000, "endTime": now}
        )
        assert [o["orderId"] for o in window] == ids
        _, later = await call(s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "startTime": now + 1})
        assert later == []
        status, body = await call(s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "limit": 1001})
        assert (status, body["code"]) == (400, -1130)
        status, body = await call(s, sim, "GET", "/api/v3/allOrders", {})
        assert (status, body["code"]) == (400, -1102)
        status, body = await call(
            s, sim, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT", "startTime": now - 2 * 86_400_000, "endTime": now}
        )
        assert (status, body["code"]) == (400, -1127)
        for path, params, weight in (
            ("/api/v3/allOrders", {"symbol": "BTCUSDT"}, 20),
            ("/api/v3/orderList", {"orderListId": oco["orderListId"]}, 4),
            ("/api/v3/openOrderList", {}, 6),
        ):
            assert await weight_of(s, sim, path, params) == weight


async def weight_of(s: aiohttp.ClientSession, sim: Simulator, path: str, params: dict) -> int:
    """What one GET of ``path`` adds to X-MBX-USED-WEIGHT-1M (measured again if a minute starts between)."""
    for _ in range(3):
        _, _, first = await call_with_headers(s, sim, "GET", path, params)
        _, _, second = await call_with_headers(s, sim, "GET", path, params)
        used = int(second["X-MBX-USED-WEIGHT-1M"]) - int(first["X-MBX-USED-WEIGHT-1M"])
        if used > 0:
            return used
    raise AssertionError(f"could not measure the weight of {path}")


async def test_python_binance_client(sim: Simulator) -> None:
    """python-binance's sync Client: create_oco_order, get_order, get_all_orders, get_open_oco_orders, and
    its generic _get/_delete for orderList (it has no named method for them); errors as BinanceAPIException."""
    async with aiohttp.ClientSession() as s:
        px = await last_price(s, sim)
    client = Client(API_KEY, API_SECRET, ping=False)
    client.API_URL = f"{sim.url}/api"

    def run() -> None:
        bought = client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        created = client.create_oco_order(
            symbol="BTCUSDT",
            side="SELL",
            quantity="0.00999",
            aboveType="LIMIT_MAKER",
            abovePrice=str(away(px, "1.05")),
            belowType="STOP_LOSS_LIMIT",
            belowStopPrice=str(away(px, "0.95")),
            belowPrice=str(away(px, "0.94")),
            belowTimeInForce="GTC",
        )
        assert created["listClientOrderId"].startswith("x-")  # python-binance names the list itself
        assert (created["contingencyType"], created["listOrderStatus"]) == ("OCO", "EXECUTING")
        legs = [o["orderId"] for o in created["orders"]]
        got = client.get_order(symbol="BTCUSDT", orderId=legs[0])
        assert (got["orderListId"], got["type"], got["status"]) == (created["orderListId"], "STOP_LOSS_LIMIT", "NEW")
        assert [o["orderId"] for o in client.get_all_orders(symbol="BTCUSDT")] == [bought["orderId"], *legs]
        assert [lst["orderListId"] for lst in client.get_open_oco_orders()] == [created["orderListId"]]
        listed = client._get("orderList", True, data={"orderListId": created["orderListId"]})
        assert listed["listStatusType"] == "EXEC_STARTED"
        cancelled = client._delete("orderList", True, data={"symbol": "BTCUSDT", "orderListId": created["orderListId"]})
        assert [r["status"] for r in cancelled["orderReports"]] == ["CANCELED", "CANCELED"]
        with pytest.raises(BinanceAPIException) as err:
            client.create_oco_order(
                symbol="BTCUSDT",
                side="SELL",
                quantity="0.00999",
                aboveType="LIMIT_MAKER",
                abovePrice=str(away(px, "0.98")),
                belowType="STOP_LOSS",
                belowStopPrice=str(away(px, "0.95")),
            )
        assert (err.value.code, err.value.message) == (
            -2010,
            "The relationship of the prices for the orders is not correct.",
        )

    await asyncio.to_thread(run)
    acct = account_of(sim)
    assert acct.locked["BTC"] == 0


async def test_real_prints_falling_through_the_stop_fill_it(sim: Simulator) -> None:
    """End to end through the market engine: prints made to jump 5 % down (the outlier control) trigger the
    stop-loss leg, which fills at its stop; the take-profit leg expires."""
    async with aiohttp.ClientSession() as s:
        await sim_market(s, sim, rate=2000)
        px = await last_price(s, sim)
        params = sell_oco(px, Decimal("0.1"))
        params["belowStopPrice"] = str(away(px, "0.98"))
        status, created = await call(s, sim, "POST", OCO, params)
        assert status == 200, created
        sl_id, tp_id = (o["orderId"] for o in created["orders"])
        async with s.post(
            f"{sim.url}/_sim/venue/outlier", json={"venue": "binance", "symbol": "BTCUSDT", "bps": -500, "seconds": 3}
        ) as r:
            assert r.status == 200, await r.text()
        deadline = time.monotonic() + 20
        sl = await order(s, sim, orderId=sl_id)
        while sl["status"] == "NEW" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # each poll weighs 4
            sl = await order(s, sim, orderId=sl_id)
        assert sl["status"] == "FILLED", sl
        assert Decimal(sl["cummulativeQuoteQty"]) == away(px, "0.98") * Decimal("0.1")
        assert (await order(s, sim, orderId=tp_id))["status"] == "EXPIRED"
        listed = await order_list(s, sim, orderListId=created["orderListId"])
        assert listed["listOrderStatus"] == "ALL_DONE"
        assert account_of(sim).locked["BTC"] == 0
