"""The Binance executor against the in-process simulator: a MARKET entry with its OCO protection, orders whose
answer is lost (sent once all the same), a skewed clock, a wrong secret, the stop-loss or take-profit closing a
position, closing by hand, protection refused, and reconcile after a crash."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from binance.exceptions import BinanceAPIException
from django.db import connection

from exchangesim.server import Simulator
from orders.executors.base import ExecutionError, PricePoint
from orders.ids import sibling_id
from orders.models import Fill, Order, Position
from tests.orders.binance_helpers import (
    SYMBOL,
    OffLoop,
    account,
    approved_entry,
    executor,
    last_price,
    now,
    qty_down,
    raw_client,
    sim_orders,
    sim_post,
    until,
)

pytestmark = pytest.mark.django_db

START_USDT, START_BTC = Decimal(100_000), Decimal(2)


@pytest.fixture
async def off_loop() -> AsyncIterator[OffLoop]:
    """Run blocking work (the executor, the ORM) on one worker thread, so the simulator keeps serving on the
    test's loop; that thread's MongoClient is closed at the end."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="binance-executor")
    loop = asyncio.get_running_loop()

    async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await loop.run_in_executor(pool, functools.partial(fn, *args, **kwargs))

    try:
        yield run
    finally:
        await run(connection.close_pool)
        pool.shutdown()


def rows_of(position: Position) -> dict[str, list[Order]]:
    """The position's orders by purpose, oldest first (entry included, found by its client id)."""
    out: dict[str, list[Order]] = {}
    rows = Order.objects.filter(client_order_id=position.entry_client_order_id) | Order.objects.filter(
        position=position
    )
    for row in rows.order_by("created_at"):
        out.setdefault(row.purpose, []).append(row)
    return out


async def open_protected(sim: Simulator, off_loop: OffLoop, **overrides: object) -> tuple[object, Position]:
    """An executor and the position it opened at the market (0.01 BTC, stop 3 % below, take-profit 6 % above)."""
    ex = executor(sim, **overrides)
    entry = await off_loop(approved_entry, await last_price(sim))
    position = await off_loop(ex.open, entry, now())
    assert position is not None
    assert position.status == Position.Status.OPEN
    return ex, position


async def test_a_market_entry_fills_and_is_protected_by_one_oco(sim: Simulator, off_loop: OffLoop) -> None:
    """The entry fills with its fills recorded; the position holds what was bought less the BTC fee; one SELL OCO
    (stop-loss below, take-profit above) works on the simulator and in our rows; the balances add up."""
    ex, position = await open_protected(sim, off_loop)
    rows = await off_loop(rows_of, position)
    entry = rows["entry"][0]
    [sim_entry] = sim_orders(sim, position.entry_client_order_id)
    [fill] = sim_entry.fills
    assert (entry.status, entry.type, entry.side, entry.executed_qty) == ("FILLED", "MARKET", "BUY", Decimal("0.01"))
    assert entry.exchange_order_id == sim_entry.order_id
    assert entry.avg_price == fill.price
    fills = await off_loop(lambda: list(Fill.objects.filter(order=entry)))
    assert [(f.trade_id, f.price, f.qty, f.fee, f.fee_asset) for f in fills] == [
        (str(fill.trade_id), fill.price, fill.qty, fill.commission, "BTC")
    ]
    assert entry.fee == fill.commission * fill.price  # the BTC fee in USDT

    held = qty_down(fill.qty - fill.commission)
    assert (position.qty, position.entry_price, position.fees) == (held, fill.price, entry.fee)
    stop, take_profit = rows["stop_loss"][0], rows["take_profit"][0]
    assert stop.client_order_id == sibling_id(position.entry_client_order_id, "stop_loss")
    assert take_profit.client_order_id == sibling_id(position.entry_client_order_id, "take_profit")
    open_orders = await off_loop(raw_client(sim).get_open_orders, symbol=SYMBOL)
    assert sorted(
        (o["clientOrderId"], o["type"], o["status"], o["orderListId"], o["origQty"]) for o in open_orders
    ) == sorted(
        (row.client_order_id, row.type, "NEW", int(position.protection), f"{held:.8f}") for row in (stop, take_profit)
    )
    for row in (stop, take_profit):
        assert row.status == "NEW"
        assert row.order_list_id == int(position.protection)
        assert row.exchange_order_id
    assert take_profit.price == position.take_profit_price
    assert stop.stop_price == position.stop_price

    cost = fill.price * fill.qty
    cash = await off_loop(ex.cash, SYMBOL)
    assert (cash.asset, cash.free, cash.total) == ("USDT", START_USDT - cost, START_USDT - cost)
    btc = account(sim)
    assert btc.locked["BTC"] == held  # the OCO reserves the position once
    assert btc.free["BTC"] == START_BTC + fill.qty - fill.commission - held


async def test_an_answer_lost_to_a_timeout_is_looked_up_not_sent_again(sim: Simulator, off_loop: OffLoop) -> None:
    """The simulator places the entry but answers 3 s late, past the 1 s client timeout: the executor finds the
    order by its client id and takes it. One entry order exists; ours is FILLED and protected."""
    ex = executor(sim, timeout=1.0)
    entry = await off_loop(approved_entry, await last_price(sim))
    await off_loop(ex.filters, SYMBOL)  # exchangeInfo and the clock first: only the order is delayed
    await sim_post(sim, "/_sim/rest/fault", {"path_prefix": "/api/v3/order", "delay_ms": 3000, "count": 1})
    position = await off_loop(ex.open, entry, now())

    assert len(sim_orders(sim, entry.client_order_id)) == 1
    assert sim.faults.injected.get("rest_delay") == 1
    assert position is not None
    assert position.protection
    rows = await off_loop(rows_of, position)
    [sim_entry] = sim_orders(sim, entry.client_order_id)
    assert (rows["entry"][0].status, rows["entry"][0].exchange_order_id) == ("FILLED", sim_entry.order_id)
    assert position.qty == qty_down(sim_entry.fills[0].qty - sim_entry.fills[0].commission)
    assert [r.status for r in rows["stop_loss"] + rows["take_profit"]] == ["NEW", "NEW"]


async def test_a_503_before_the_order_was_placed_sends_it_once_more(sim: Simulator, off_loop: OffLoop) -> None:
    """A 503 before the simulator placed anything: the lookup finds nothing, so (once the request's recvWindow
    has passed) the order is sent again with the same id. Exactly one order exists."""
    ex = executor(sim, recv_window_ms=1000)
    entry = await off_loop(approved_entry, await last_price(sim))
    await off_loop(ex.filters, SYMBOL)
    await sim_post(sim, "/_sim/rest/fault", {"path_prefix": "/api/v3/order", "status": 503, "count": 1})
    position = await off_loop(ex.open, entry, now())

    assert sim.faults.injected.get("rest_503") == 1
    assert len(sim_orders(sim, entry.client_order_id)) == 1
    assert position is not None
    assert position.protection
    row = await off_loop(Order.objects.get, client_order_id=entry.client_order_id)
    assert row.status == "FILLED"
    assert row.reason == ""


@pytest.mark.parametrize("offset_ms", [-3000, 3000])
async def test_a_skewed_clock_still_trades(sim: Simulator, off_loop: OffLoop, offset_ms: int) -> None:
    """The simulator's clock moves 3 s (behind, then ahead) after the executor measured it: python-binance
    without an offset is refused (-1021), the executor re-measures and its entry fills; a new executor measures
    the skew before its first signed request."""
    ex = executor(sim, recv_window_ms=2000)
    await off_loop(ex.cash, SYMBOL)  # the clock measured while the simulator is on time
    assert abs(ex.client.timestamp_offset) < 500
    await sim_post(sim, "/_sim/config", {"clock_offset_ms": offset_ms})
    with pytest.raises(BinanceAPIException) as refused:
        await off_loop(raw_client(sim, recv_window_ms=2000).get_account)
    assert refused.value.code == -1021

    entry = await off_loop(approved_entry, await last_price(sim))
    position = await off_loop(ex.open, entry, now())
    assert position is not None
    assert position.protection
    assert abs(ex.client.timestamp_offset - offset_ms) < 500
    row = await off_loop(Order.objects.get, client_order_id=entry.client_order_id)
    assert row.status == "FILLED"
    fresh = executor(sim, recv_window_ms=2000)
    assert (await off_loop(fresh.cash, SYMBOL)).asset == "USDT"
    assert abs(fresh.client.timestamp_offset - offset_ms) < 500


async def test_a_wrong_secret_is_a_rejected_order_with_the_exchanges_reason(sim: Simulator, off_loop: OffLoop) -> None:
    """Signed with the wrong secret, the entry is REJECTED with Binance's message and code; no position, nothing
    on the simulator, and the secret appears nowhere."""
    ex = executor(sim, secret="notTheSecret999")
    entry = await off_loop(approved_entry, await last_price(sim))
    assert await off_loop(ex.open, entry, now()) is None
    row = await off_loop(Order.objects.get, client_order_id=entry.client_order_id)
    assert (row.status, row.reason) == ("REJECTED", "Signature for this request is not valid. (-1022)")
    assert not await off_loop(Position.objects.exists)
    assert account(sim).orders == {}


@pytest.mark.parametrize(
    ("bps", "leg", "other"), [(-800, "stop_loss", "take_profit"), (800, "take_profit", "stop_loss")]
)
async def test_the_leg_that_fills_closes_the_position(
    sim: Simulator, off_loop: OffLoop, bps: int, leg: str, other: str
) -> None:
    """The market prints 8 % away: the simulator fills that side's leg and expires the other; ``watch``, seeing a
    trade past the level, settles it: the position closes with that exit reason and PnL = proceeds − cost −
    every fee, worked out here from the simulator's own fills."""
    ex, position = await open_protected(sim, off_loop)
    list_id = int(position.protection)
    await sim_post(sim, "/_sim/venue/outlier", {"venue": "binance", "symbol": SYMBOL, "bps": bps, "seconds": 3})
    await until(lambda: account(sim).lists[list_id].status == "ALL_DONE", "the OCO to fill")
    crossed = position.stop_price - 1 if bps < 0 else position.take_profit_price + 1
    changed = await off_loop(ex.watch, SYMBOL, [PricePoint(crossed, now())], now())

    assert [p.pk for p in changed] == [position.pk]
    closed = await off_loop(Position.objects.get, pk=position.pk)
    rows = await off_loop(rows_of, closed)
    [entry_fill] = sim_orders(sim, position.entry_client_order_id)[0].fills
    [winner] = sim_orders(sim, sibling_id(position.entry_client_order_id, leg))
    [exit_fill] = winner.fills
    held = qty_down(entry_fill.qty - entry_fill.commission)
    expected = (
        exit_fill.price * exit_fill.qty
        - held * entry_fill.price
        - entry_fill.commission * entry_fill.price
        - exit_fill.commission
    )
    assert (closed.status, closed.exit_reason, closed.exit_price) == ("closed", leg, exit_fill.price)
    assert closed.realised_pnl == expected
    assert closed.fees == entry_fill.commission * entry_fill.price + exit_fill.commission
    assert (bps < 0) == (expected < 0)
    assert (rows[leg][0].status, rows[other][0].status) == ("FILLED", "EXPIRED")
    assert await off_loop(lambda: rows[leg][0].fills.count()) == 1


async def test_open_twice_places_one_order(sim: Simulator, off_loop: OffLoop) -> None:
    """The same entry acted on twice (a retry, a restart) is one order on the exchange and one position."""
    ex, first = await open_protected(sim, off_loop)
    entry_row = await off_loop(Order.objects.get, client_order_id=first.entry_client_order_id)
    second = await off_loop(ex.open, await off_loop(_entry_of, entry_row), now())
    again = await off_loop(executor(sim).open, await off_loop(_entry_of, entry_row), now())
    assert first.pk == second.pk == again.pk
    assert len(sim_orders(sim, first.entry_client_order_id)) == 1
    assert len(account(sim).lists) == 1
    assert len(account(sim).orders) == 3
    assert await off_loop(Position.objects.count) == 1
    assert await off_loop(Order.objects.count) == 3


def _entry_of(row: Order) -> object:
    """The Entry that made ``row`` (from its risk decision)."""
    from orders.executors.base import Entry

    d = row.risk_decision
    return Entry(d, "binance", SYMBOL, d.qty, d.price, d.stop_price, d.take_profit_price, row.client_order_id)


async def test_closing_by_hand_cancels_the_oco_and_sells(sim: Simulator, off_loop: OffLoop) -> None:
    """``close`` cancels the OCO, sells the position at market with the exit id and closes it with its PnL;
    closing it again changes nothing."""
    ex, position = await open_protected(sim, off_loop)
    closed = await off_loop(ex.close, position, "manual", now())
    assert (closed.status, closed.exit_reason, closed.protection) == ("closed", "manual", "")
    rows = await off_loop(rows_of, closed)
    assert [r.status for r in rows["stop_loss"] + rows["take_profit"]] == ["CANCELED", "CANCELED"]
    assert [o.status for o in account(sim).orders.values() if o.order_list_id >= 0] == ["CANCELED", "CANCELED"]
    [exit_order] = sim_orders(sim, sibling_id(position.entry_client_order_id, "exit"))
    [exit_fill] = exit_order.fills
    [entry_fill] = sim_orders(sim, position.entry_client_order_id)[0].fills
    assert exit_order.side == "SELL"
    assert exit_fill.qty == position.qty
    assert closed.realised_pnl == (
        exit_fill.price * exit_fill.qty
        - position.qty * position.entry_price
        - entry_fill.commission * entry_fill.price
        - exit_fill.commission
    )
    assert account(sim).locked["BTC"] == 0
    orders_before = len(account(sim).orders)
    assert (await off_loop(ex.close, closed, "manual", now())).realised_pnl == closed.realised_pnl
    assert len(account(sim).orders) == orders_before


async def test_protection_refused_past_a_level_closes_at_market(sim: Simulator, off_loop: OffLoop) -> None:
    """A stop already above the market: Binance refuses the OCO (price relationship), so the position is sold at
    market at once, the reason on the exit order, rather than left unprotected."""
    ex = executor(sim)
    price = await last_price(sim)
    entry = await off_loop(
        approved_entry,
        price,
        stop=(price * Decimal("1.02")).quantize(Decimal("0.01")),
        take_profit=(price * Decimal("1.06")).quantize(Decimal("0.01")),
    )
    position = await off_loop(ex.open, entry, now())
    assert position is not None
    assert position.status == "closed"
    assert position.exit_reason == "stop_loss"
    rows = await off_loop(rows_of, position)
    refusal = "The relationship of the prices for the orders is not correct. (-2010)"
    assert [(r.status, r.reason) for r in rows["stop_loss"] + rows["take_profit"]] == [("REJECTED", refusal)] * 2
    assert rows["exit"][0].status == "FILLED"
    assert rows["exit"][0].reason == f"protection refused: {refusal}; closed at market"
    assert account(sim).lists == {}


async def test_reconcile_settles_what_a_crash_left_pending(sim: Simulator, off_loop: OffLoop) -> None:
    """After a crash: an entry that reached the exchange is taken (position and protection made), one that never
    did is REJECTED; a position whose OCO was cancelled is protected again with the next attempt's ids."""
    ex = executor(sim)
    price = await last_price(sim)
    sent, lost = [await off_loop(approved_entry, price, minute=m) for m in (1, 2)]
    client = raw_client(sim)
    await off_loop(
        client.create_order,
        symbol=SYMBOL,
        side="BUY",
        type="MARKET",
        quantity="0.01",
        newClientOrderId=sent.client_order_id,
    )  # sent, then the process died before the answer
    earlier = now().replace(year=2025)  # long enough ago that neither request can still arrive
    for entry in (sent, lost):
        await off_loop(
            Order.objects.create,
            client_order_id=entry.client_order_id,
            mode="testnet",
            exchange="binance",
            symbol=SYMBOL,
            side="BUY",
            type="MARKET",
            purpose="entry",
            qty=entry.qty,
            risk_decision=entry.decision,
            created_at=earlier,
            updated_at=earlier,
        )
    changed = await off_loop(ex.reconcile, now())

    by_id = {o.client_order_id: o for o in changed}
    assert (by_id[lost.client_order_id].status, by_id[lost.client_order_id].reason) == (
        "REJECTED",
        "never reached the exchange",
    )
    assert by_id[sent.client_order_id].status == "FILLED"
    position = await off_loop(Position.objects.get, entry_client_order_id=sent.client_order_id)
    assert position.status == "open"
    assert position.protection
    assert len(sim_orders(sim, sent.client_order_id)) == 1

    stop_leg = (await off_loop(rows_of, position))["stop_loss"][0]
    cancelled = await off_loop(ex.cancel, stop_leg, now())
    assert (cancelled.status, cancelled.reason) == ("CANCELED", "cancelled by hand")
    await off_loop(ex.reconcile, now())
    position = await off_loop(Position.objects.get, pk=position.pk)
    rows = await off_loop(rows_of, position)
    assert [r.status for r in rows["stop_loss"]] == ["CANCELED", "NEW"]
    assert rows["stop_loss"][1].client_order_id == sibling_id(sent.client_order_id, "stop_loss", attempt=1)
    assert position.protection == str(rows["stop_loss"][1].order_list_id)
    assert len([lst for lst in account(sim).lists.values() if lst.status == "EXECUTING"]) == 1


async def test_a_request_that_times_out_names_its_path_not_its_signed_url(sim: Simulator, off_loop: OffLoop) -> None:
    """A signed GET that times out is reported as "timeout on GET /api/v3/account": no URL, so no signature (a
    GET carries it in its query), no requests exception attached."""
    ex = executor(sim, timeout=0.5)
    await off_loop(ex.filters, SYMBOL)
    await sim_post(sim, "/_sim/rest/fault", {"path_prefix": "/api/v3/account", "delay_ms": 1000, "count": 1})
    with pytest.raises(ExecutionError) as failed:
        await off_loop(ex.cash, SYMBOL)
    assert str(failed.value) == "the Binance account could not be read: timeout on GET /api/v3/account"
    assert failed.value.__cause__ is None
    assert failed.value.__suppress_context__
