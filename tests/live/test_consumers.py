"""The live page's channel-layer side against the real Redis channel layer and MongoDB: the staff-only drop
endpoint (CSRF, 403, 400, 202 once the stream's control listener acknowledged, 504 when none did, 503 without
Redis) and the consumers of ``live.consumers`` (snapshot, unknown instrument, per-client coalescing of trades, the
admin's price feed). The page itself: tests/live/test_page.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from autobahn.exception import Disconnected
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from live.consumers import NOT_FOUND, MarketConsumer, PricesConsumer
from markets.control import request_drop
from markets.exchanges.base import Source, TradeTick
from markets.live import PRICES_GROUP, market_group
from markets.models import Feed
from markets.services import candles_rebuild, ticks_ingest
from markets.stream.control import receive_commands
from tradingsite.asgi import application
from tradingsite.devstack import free_port

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
Connect = Callable[..., Awaitable[tuple[WebsocketCommunicator, bool]]]
StaffClient = Callable[..., Client]  # the staff_client fixture (tests/live/conftest.py)


def tick(i: int, price: str = "64000.10") -> TradeTick:
    ts = T0 + timedelta(seconds=i)
    return TradeTick(
        "binance",
        "BTCUSDT",
        1000 + i,
        Decimal(price),
        Decimal("0.5"),
        "buy" if i % 2 else "sell",
        ts,
        ts,
        Source.WS,
        1000 + i,
        1000 + i,
    )


# ---- the drop endpoint ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def binance_stream() -> AsyncIterator[list[tuple[float, str]]]:
    """The stream's real control listener for binance on this loop (no socket behind it); yields the drops it was
    told, in order. It leaves its group at the end."""
    drops: list[tuple[float, str]] = []
    layer = get_channel_layer()
    joined = asyncio.Event()

    class Watched:  # the project's layer, telling us when the listener has joined
        def __getattr__(self, name: str) -> Any:
            return getattr(layer, name)

        async def group_add(self, group: str, channel: str) -> None:
            await layer.group_add(group, channel)
            joined.set()

    task = asyncio.create_task(receive_commands("binance", lambda s, m: drops.append((s, m)), layer=Watched()))
    try:
        async with asyncio.timeout(10):
            await joined.wait()
        yield drops
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_staff_drop_is_acknowledged_by_the_stream(staff_client: StaffClient) -> None:
    client = await database_sync_to_async(staff_client)()
    async with binance_stream() as drops:
        resp = await database_sync_to_async(client.post)(
            "/market/binance/feed/drop", {"seconds": 10, "mode": "stall"}, content_type="application/json"
        )
    assert resp.status_code == 202
    assert resp.json() == {
        "exchange": "binance",
        "seconds": 10.0,
        "mode": "stall",
        "acknowledged": 1,
        "streams": [f"{socket.gethostname()} pid {os.getpid()}"],
        "detail": "the binance stream acknowledged: it drops its socket for 10 s",
    }
    assert drops == [(10.0, "stall")]


@pytest.mark.parametrize("who", ["anonymous", "not staff"])
async def test_drop_is_403_for_anyone_but_staff(who: str) -> None:
    """Refused, and nothing reaches the stream: a drop sent after it is the first the stream hears."""
    client = Client()
    if who == "not staff":
        user = await database_sync_to_async(get_user_model().objects.create_user)("viewer", password="pw-tests")
        await database_sync_to_async(client.force_login)(user)
    async with binance_stream() as drops:
        resp = await database_sync_to_async(client.post)("/market/binance/feed/drop", {"seconds": 10})
        await database_sync_to_async(request_drop)("binance", 1.0, "close")
    assert resp.status_code == 403
    assert resp.json() == {"error": "forbidden", "detail": "only staff may control the feed"}
    assert drops == [(1.0, "close")]


def test_drop_no_stream_acknowledges_is_a_504_saying_so(staff_client: StaffClient, settings: Any) -> None:
    settings.FEED_CONTROL_ACK_SECONDS = 0.5
    resp = staff_client().post("/market/binance/feed/drop", {"seconds": 10}, content_type="application/json")
    assert resp.status_code == 504
    assert resp.json() == {
        "error": "no_stream",
        "detail": "no stream of binance acknowledged the drop within 0.5 s: is manage.py stream running?",
    }


def test_drop_without_redis_is_a_503(staff_client: StaffClient, settings: Any) -> None:
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": f"redis://127.0.0.1:{free_port()}/0"}]},  # nothing listens there
        }
    }
    resp = staff_client().post("/market/binance/feed/drop", {"seconds": 10}, content_type="application/json")
    assert resp.status_code == 503
    assert resp.json()["error"] == "unavailable"
    assert resp.json()["detail"].startswith("the channel layer (Redis) cannot be reached: ")


def test_drop_without_csrf_token_is_refused(instruments: None, staff_client: StaffClient, settings: Any) -> None:
    """Without the token: 403. With it the request goes through (504 here: no stream runs)."""
    settings.FEED_CONTROL_ACK_SECONDS = 0.2
    client = staff_client(enforce_csrf_checks=True)
    assert client.post("/market/binance/feed/drop", {"seconds": 10}).status_code == 403
    client.get("/market/binance/BTCUSDT/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert client.post("/market/binance/feed/drop", {"seconds": 1}, HTTP_X_CSRFTOKEN=token).status_code == 504


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seconds": 0}, "seconds"),
        ({"seconds": 7200}, "seconds"),
        ({"seconds": "ten"}, "seconds"),
        ({"seconds": 5, "mode": "explode"}, "mode"),
    ],
)
def test_bad_drop_is_a_400_naming_the_field(body: dict[str, object], field: str, staff_client: StaffClient) -> None:
    resp = staff_client().post("/market/binance/feed/drop", body, content_type="application/json")
    assert resp.status_code == 400
    assert list(resp.json()["fields"]) == [field]


def test_drop_on_an_unknown_exchange_and_bad_json_are_400s(staff_client: StaffClient) -> None:
    client = staff_client()
    assert client.post("/market/nowhere/feed/drop", {"seconds": 5}).json()["fields"].keys() == {"exchange"}
    assert client.post("/market/binance/feed/drop", "{not json", content_type="application/json").status_code == 400
    assert client.get("/market/binance/feed/drop").status_code == 405


# ---- the consumers ----------------------------------------------------------------------------------------


@pytest.fixture
async def sockets() -> AsyncIterator[Connect]:
    """Opens consumer sockets and, whatever the test did, ends each one with a disconnect so that no consumer is
    left parked in a Redis receive for the event loop's teardown to cancel (a CI run once hung there 300 s)."""
    opened: list[WebsocketCommunicator] = []

    async def connect(path: str, user: object = None) -> tuple[WebsocketCommunicator, bool]:
        comm = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://127.0.0.1")])
        comm.scope["user"] = user or AnonymousUser()
        opened.append(comm)
        connected, _ = await comm.connect()
        return comm, connected

    yield connect
    for comm in opened:
        with contextlib.suppress(Exception):
            await comm.disconnect(timeout=5)


def _stored_history() -> None:
    ticks_ingest(ticks=[tick(i, f"64000.{i:02d}") for i in range(90)])
    candles_rebuild(
        exchange="binance", symbol="BTCUSDT", minutes=[T0, T0 + timedelta(minutes=1)], now=T0 + timedelta(minutes=5)
    )
    Feed.objects.create(
        exchange="binance",
        symbol="BTCUSDT",
        state="connected",
        last_trade_id=1089,
        last_trade_at=T0 + timedelta(seconds=89),
        reconnects=2,
    )


async def test_snapshot_then_events(instruments: None, sockets: Connect) -> None:
    await database_sync_to_async(_stored_history)()
    comm, connected = await sockets("/ws/market/binance/BTCUSDT/")
    assert connected
    first = await comm.receive_json_from(timeout=5)
    assert first["type"] == "snapshot"
    assert [c["time"] for c in first["candles"]] == [int(T0.timestamp() * 1000), int(T0.timestamp() * 1000) + 60_000]
    assert (first["candles"][0]["open"], first["candles"][0]["close"]) == ("64000.00", "64000.59")
    assert [t["id"] for t in first["trades"]] == list(range(1040, 1090))  # the last 50, oldest first
    assert (first["feed"]["state"], first["feed"]["reconnects"]) == ("connected", 2)
    layer = get_channel_layer()
    await layer.group_send(
        market_group("binance", "BTCUSDT"), {"type": "market.feed", "data": {"state": "reconnecting"}}
    )
    assert await comm.receive_json_from(timeout=5) == {"type": "feed", "feed": {"state": "reconnecting"}}


async def test_unknown_instrument_closes_with_4404(instruments: None, sockets: Connect) -> None:
    comm, connected = await sockets("/ws/market/binance/DOGEUSDT/")
    assert connected
    assert (await comm.receive_json_from(timeout=5))["type"] == "error"
    assert await comm.receive_output(timeout=5) == {"type": "websocket.close", "code": NOT_FOUND}


async def test_an_unknown_socket_path_is_closed_not_a_traceback(sockets: Connect) -> None:
    _, connected = await sockets("/ws/nothing/here/")
    assert not connected


async def test_trades_are_coalesced_to_about_ten_messages_a_second(instruments: None, sockets: Connect) -> None:
    """200 trade events in one second reach a client as at most ~11 messages carrying every count."""
    comm, _ = await sockets("/ws/market/binance/BTCUSDT/")
    await comm.receive_json_from(timeout=5)  # the snapshot
    layer = get_channel_layer()
    began = time.monotonic()
    for i in range(200):
        await layer.group_send(
            market_group("binance", "BTCUSDT"),
            {
                "type": "market.trades",
                "data": {"trades": [{"id": i, "price": "1", "qty": "1", "side": "buy", "time": 0}], "count": 1},
            },
        )
        await asyncio.sleep(0.005)
    messages, count, last_id = 0, 0, None
    while count < 200:
        msg = await comm.receive_json_from(timeout=2)
        messages += 1
        count += msg["count"]
        last_id = msg["trades"][-1]["id"]
    elapsed = time.monotonic() - began
    print(f"\n200 trade events over {elapsed:.2f} s reached the client as {messages} messages")
    assert (count, last_id) == (200, 199)
    assert messages <= elapsed * 10 + 2


async def test_admin_prices_are_for_staff_only(instruments: None, sockets: Connect) -> None:
    """Staff only; the last price of each instrument, printed to its tick (``live.payloads``)."""
    comm, connected = await sockets("/ws/prices/")
    assert not connected
    staff = await database_sync_to_async(get_user_model().objects.create_user)("ops", is_staff=True)
    comm, connected = await sockets("/ws/prices/", staff)
    assert connected
    layer = get_channel_layer()
    for price in ("1.00000000", "2"):
        await layer.group_send(
            PRICES_GROUP,
            {"type": "prices.update", "data": {"exchange": "binance", "symbol": "BTCUSDT", "price": price, "time": 0}},
        )
    assert await comm.receive_json_from(timeout=3) == {
        "type": "prices",
        "prices": [{"exchange": "binance", "symbol": "BTCUSDT", "price": "2.00", "time": 0}],
    }


@pytest.mark.parametrize("consumer", [MarketConsumer, PricesConsumer])
async def test_an_event_for_a_browser_that_just_left_is_dropped_not_a_traceback(consumer: type) -> None:
    """Daphne raises ``Disconnected`` when an event is relayed to a socket that closed an instant before the
    consumer heard of it; the event is dropped quietly (the disconnect that follows cleans up)."""
    sent: list[dict[str, Any]] = []

    async def closed_socket(message: dict[str, Any]) -> None:
        sent.append(message)
        raise Disconnected("Attempt to send on a closed protocol")

    c = consumer()
    c.base_send = closed_socket
    await c.send_json({"type": "trades", "trades": [], "count": 0})
    assert sent == [{"type": "websocket.send", "text": '{"type": "trades", "trades": [], "count": 0}'}]
