"""OCO order lists (orderList/oco, orderList GET/DELETE, openOrderList): one shared reservation, the leg
the market reaches wins and the other expires, cancelling the list or one leg cancels both. What is rejected is in
test_signed_oco_rejections.py, allOrders and python-binance's client in test_signed_oco_queries.py.

Matching is driven deterministically by calling the order book's ``on_trades`` with chosen prints (legs sit
5 % away from the market, far beyond what the random walk covers during a test), and once end to end through
real prints made to jump by the ``/_sim/venue/outlier`` control.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import pytest

from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.oco_client import (
    FEE,
    OCO,
    TICK,
    account_of,
    away,
    call_with_headers,
    order,
    order_list,
    prints,
    sell_oco,
)
from tests.exchangesim.test_signed import call, last_price, sim_market


@pytest.fixture
async def no_btc_sim() -> AsyncIterator[Simulator]:
    """A simulator whose account holds no BTC: what a market BUY brings is the whole free base balance."""
    async with Simulator(sim_config(balances={"USDT": Decimal(100_000), "BTC": Decimal(0)})) as s:
        yield s


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
