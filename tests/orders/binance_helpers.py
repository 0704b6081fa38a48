"""Shared set-up of the Binance executor tests: executors and raw clients on the simulator, its control API and
account, and approved entries with their risk decisions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

import aiohttp
from binance.client import Client

from exchangesim.binance.accounts import Account
from exchangesim.binance.accounts import Order as SimOrder
from exchangesim.server import Simulator
from orders.executors.base import Entry
from orders.executors.binance import BinanceExecutor
from orders.ids import client_order_id, signal_key
from orders.models import RiskDecision
from tests.conftest import API_KEY, API_SECRET

SYMBOL = "BTCUSDT"
MODE = "testnet"
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
TICK, STEP = Decimal("0.01"), Decimal("0.00001")

OffLoop = Callable[..., Awaitable[Any]]


def now() -> datetime:
    return datetime.now(UTC)


def executor(sim: Simulator, **overrides: Any) -> BinanceExecutor:
    """An executor on the simulator with its keys (``overrides``: secret, timeout, recv_window_ms, ...)."""
    args: dict[str, Any] = {"rest_url": sim.url, "key": API_KEY, "secret": API_SECRET, "mode": MODE, "timeout": 2.0}
    args.update(overrides)
    return BinanceExecutor(**args)


def raw_client(sim: Simulator, *, recv_window_ms: int = 5000) -> Client:
    """python-binance as it comes (no clock offset), pointed at the simulator."""
    client = Client(API_KEY, API_SECRET, ping=False, requests_params={"timeout": 5})
    client.API_URL = sim.url + "/api"
    client.REQUEST_RECVWINDOW = recv_window_ms
    return client


def approved_entry(
    price: Decimal,
    *,
    minute: int = 0,
    qty: Decimal = Decimal("0.01"),
    stop: Decimal | None = None,
    take_profit: Decimal | None = None,
) -> Entry:
    """An approved BUY of ``qty`` at about ``price`` (stop 3 % below, take-profit 6 % above unless given), with the
    risk decision row it comes from."""
    stop = stop if stop is not None else (price * Decimal("0.97")).quantize(TICK, ROUND_DOWN)
    take_profit = take_profit if take_profit is not None else (price * Decimal("1.06")).quantize(TICK, ROUND_UP)
    open_time = T0.replace(minute=minute)
    decision = RiskDecision.objects.create(
        mode=MODE,
        strategy="ta-vote",
        exchange="binance",
        symbol=SYMBOL,
        interval="1m",
        candle_open_time=open_time,
        action="BUY",
        approved=True,
        reasons=["approved for the test"],
        price=price,
        qty=qty,
        stop_price=stop,
        take_profit_price=take_profit,
        created_at=now(),
    )
    key = signal_key("ta-vote", "binance", SYMBOL, "1m", open_time, MODE)
    return Entry(decision, "binance", SYMBOL, qty, price, stop, take_profit, client_order_id(key, "entry"))


async def sim_post(sim: Simulator, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST to the simulator's control API; it must accept."""
    async with aiohttp.ClientSession() as http, http.post(sim.url + path, json=body) as response:
        answer = await response.json()
        assert response.status == 200, answer
        return answer


async def last_price(sim: Simulator) -> Decimal:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sim.url}/api/v3/ticker/price", params={"symbol": SYMBOL}) as response,
    ):
        return Decimal((await response.json())["price"])


def account(sim: Simulator) -> Account:
    """The simulator's book of our API key (read it on the test's loop, between awaits)."""
    return sim.binance.orders.accounts[API_KEY]


def sim_orders(sim: Simulator, client_id: str) -> list[SimOrder]:
    """Every order the simulator holds with ``client_id``."""
    return [o for o in account(sim).orders.values() if o.client_order_id == client_id]


async def until(check: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    """Wait on the loop until ``check()`` holds."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def qty_down(qty: Decimal) -> Decimal:
    return (qty / STEP).to_integral_value(rounding=ROUND_DOWN) * STEP
