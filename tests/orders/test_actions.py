"""The staff actions behind the live page's Close and Cancel buttons, and the page's socket for the trading
records, against the real Redis channel layer and MongoDB: CSRF enforced, 403 for anyone who is not staff, 404
for an unknown or ill-formed id, 409 with the reason for a record that cannot be acted on, a paper position closed
by hand at its last price (else its symbol's last trade); a staff socket's first snapshot carries positions and
orders, and an ``orders.update`` (from the stream's trader or a staff action) reaches a connected staff page, while
anyone else's socket gets neither (unless ``TRADING_DATA_PUBLIC``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.test import Client

from markets.exchanges.base import Source, TradeTick
from markets.services import ticks_ingest
from orders.live import ORDERS_GROUP, order_data, position_data
from orders.models import Order, Position
from tests.markets import test_live
from tests.orders.test_api import Records, make_records

pytestmark = pytest.mark.django_db(transaction=True)  # the consumer reads on threads of its own
sockets = test_live.sockets  # the consumer sockets fixture, each ended with a disconnect
Connect = test_live.Connect
SLIP = D("0.0005")


@pytest.fixture
def records() -> Records:
    return make_records()


def client_of(*, staff: bool | None, csrf: bool = False) -> Client:
    """A client of a staff user, a signed-in user who is not staff (False), or nobody (None)."""
    client = Client(enforce_csrf_checks=csrf)
    if staff is not None:
        name = "ops" if staff else "viewer"
        user = get_user_model().objects.create_user(name, password="pw-for-tests-only", is_staff=staff)
        client.force_login(user)
    return client


def close_url(pk: object) -> str:
    return f"/orders/positions/{pk}/close"


def cancel_url(pk: object) -> str:
    return f"/orders/orders/{pk}/cancel"


def test_staff_closes_a_paper_position_at_its_last_price(records: Records) -> None:
    response = client_of(staff=True).post(close_url(records.btc.pk))
    assert response.status_code == 200, response.content
    body = response.json()
    btc = Position.objects.get(pk=records.btc.pk)
    assert (btc.status, btc.exit_reason, btc.exit_price) == ("closed", "manual", D(40000) * (1 - SLIP))
    assert [p["id"] for p in body["positions"]] == [str(btc.pk)]
    assert (body["positions"][0]["status"], body["positions"][0]["exit_reason"]) == ("closed", "manual")
    assert {(o["purpose"], o["status"]) for o in body["orders"]} == {
        ("entry", "FILLED"),
        ("stop_loss", "CANCELED"),
        ("take_profit", "CANCELED"),
        ("exit", "FILLED"),
    }
    assert body["detail"] == "BTCUSDT position closed at 39980"


def test_without_a_last_price_the_last_stored_trade_prices_the_close(records: Records) -> None:
    Position.objects.filter(pk=records.btc.pk).update(last_price=None)
    ts = datetime(2026, 11, 24, 10, 5, tzinfo=UTC)
    ticks_ingest(ticks=[TradeTick("binance", "BTCUSDT", 7, D("41000.50"), D(1), "buy", ts, ts, Source.WS, 7, 7)])
    assert client_of(staff=True).post(close_url(records.btc.pk)).status_code == 200
    assert Position.objects.get(pk=records.btc.pk).exit_price == D("41000.50") * (1 - SLIP)


def test_no_price_at_all_is_a_409_saying_so(records: Records) -> None:
    Position.objects.filter(pk=records.btc.pk).update(last_price=None)
    response = client_of(staff=True).post(close_url(records.btc.pk))
    assert response.status_code == 409
    assert "no price to close the paper BTCUSDT position at" in response.json()["detail"]
    assert Position.objects.get(pk=records.btc.pk).status == "open"


def test_staff_cancels_an_open_order(records: Records) -> None:
    stop = Order.objects.get(position=records.btc, purpose="stop_loss")
    response = client_of(staff=True).post(cancel_url(stop.pk))
    assert response.status_code == 200, response.content
    assert Order.objects.get(pk=stop.pk).status == "CANCELED"
    body = response.json()
    assert [(o["id"], o["status"], o["reason"]) for o in body["orders"]] == [
        (str(stop.pk), "CANCELED", "cancelled by hand")
    ]
    assert [p["id"] for p in body["positions"]] == [str(records.btc.pk)]


@pytest.mark.parametrize("what", ["closed position", "filled order", "expired order"])
def test_a_record_that_cannot_be_acted_on_is_a_409_with_the_reason(records: Records, what: str) -> None:
    client = client_of(staff=True)
    if what == "closed position":
        response = client.post(close_url(records.eth.pk))
        says = "the ETHUSDT position is already closed (take-profit)"
    else:
        status = "FILLED" if what == "filled order" else "EXPIRED"
        order = Order.objects.filter(position=records.eth, status=status).first()
        assert order is not None
        response = client.post(cancel_url(order.pk))
        says = f"order {order.client_order_id} is {status}: only open orders"
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert says in response.json()["detail"]


@pytest.mark.parametrize("pk", ["6b0000000000000000000000", "not-an-id", "0"])
@pytest.mark.parametrize("url", [close_url, cancel_url])
def test_an_unknown_or_ill_formed_id_is_a_json_404(db: None, pk: str, url: Any) -> None:
    response = client_of(staff=True).post(url(pk))
    assert response.status_code == 404
    assert response.json() == {
        "error": "not found",
        "detail": f"no {'position' if url is close_url else 'order'} with id {pk!r}",
    }


@pytest.mark.parametrize("who", [None, False])
def test_anyone_but_staff_gets_a_json_403_and_nothing_changes(records: Records, who: bool | None) -> None:
    client = client_of(staff=who)
    stop = Order.objects.get(position=records.btc, purpose="stop_loss")
    for url in (close_url(records.btc.pk), cancel_url(stop.pk)):
        response = client.post(url)
        assert response.status_code == 403
        assert response.json() == {"error": "forbidden", "detail": "only staff may close positions or cancel orders"}
    assert Position.objects.get(pk=records.btc.pk).status == "open"
    assert Order.objects.get(pk=stop.pk).status == "NEW"


def test_csrf_is_enforced_with_a_json_403(records: Records) -> None:
    """Without the page's token a staff POST is refused (as JSON); with it, it goes through."""
    client = client_of(staff=True, csrf=True)
    refused = client.post(close_url(records.btc.pk))
    assert refused.status_code == 403
    assert refused.json()["detail"].startswith("CSRF check failed")
    assert Position.objects.get(pk=records.btc.pk).status == "open"
    client.get("/market/binance/BTCUSDT/")  # the live page sets the CSRF cookie and holds the token
    token = client.cookies["csrftoken"].value
    assert client.post(close_url(records.btc.pk), HTTP_X_CSRFTOKEN=token).status_code == 200
    assert Position.objects.get(pk=records.btc.pk).exit_reason == "manual"


def test_only_post(records: Records) -> None:
    assert client_of(staff=True).get(close_url(records.btc.pk)).status_code == 405


def test_a_mode_without_an_executor_here_is_a_503(db: None, settings: Any) -> None:
    settings.BINANCE_API_KEY = settings.BINANCE_API_SECRET = ""
    now = datetime(2026, 11, 24, tzinfo=UTC)
    position = Position.objects.create(
        mode="live",
        exchange="binance",
        symbol="BTCUSDT",
        qty=D(1),
        entry_price=D(100),
        stop_price=D(97),
        take_profit_price=D(106),
        entry_client_order_id="ts-live-e",
        opened_at=now,
        updated_at=now,
    )
    response = client_of(staff=True).post(close_url(position.pk))
    assert response.status_code == 503
    assert response.json() == {
        "error": "unavailable",
        "detail": "live orders on binance need BINANCE_API_KEY and BINANCE_API_SECRET",
    }


# ---- the live page's socket --------------------------------------------------------------------------------


def staff_user() -> Any:
    return get_user_model().objects.create_user("ops-socket", password="pw-for-tests-only", is_staff=True)


async def test_snapshot_carries_positions_and_orders_to_staff(sockets: Connect) -> None:
    records = await database_sync_to_async(make_records)()
    comm, connected = await sockets("/ws/market/binance/ETHUSDT/", await database_sync_to_async(staff_user)())
    assert connected
    first = await comm.receive_json_from(timeout=5)
    assert (first["type"], first["trading"]) == ("snapshot", True)
    # Every open position (of any symbol, not only the page's), then the recently closed ones.
    assert [(p["id"], p["status"]) for p in first["positions"]] == [
        (str(records.btc.pk), "open"),
        (str(records.eth.pk), "closed"),
    ]
    btc = await database_sync_to_async(Position.objects.get)(pk=records.btc.pk)
    assert first["positions"][0] == position_data(btc)
    assert len(first["orders"]) == 6
    assert {o["symbol"] for o in first["orders"]} == {"BTCUSDT", "ETHUSDT"}
    assert all(isinstance(o["qty"], str) and isinstance(o["created_at"], int) for o in first["orders"])


@pytest.mark.parametrize("who", ["anonymous", "signed in, not staff"])
async def test_anyone_but_staff_gets_no_trading_records_and_no_updates(sockets: Connect, who: str) -> None:
    """The snapshot has no positions or orders (``"trading": false``) and an ``orders.update`` is not delivered,
    while a staff socket on the same page gets it."""
    records = await database_sync_to_async(make_records)()
    user = None
    if who != "anonymous":
        user = await database_sync_to_async(get_user_model().objects.create_user)("viewer", password="pw-tests")
    comm, connected = await sockets("/ws/market/binance/BTCUSDT/", user)
    assert connected
    first = await comm.receive_json_from(timeout=5)
    assert (first["type"], first["trading"]) == ("snapshot", False)
    assert "positions" not in first
    assert "orders" not in first
    assert {"candles", "trades", "gaps", "signals", "feed"} <= set(first)  # the market data is all there
    staff, _ = await sockets("/ws/market/binance/BTCUSDT/", await database_sync_to_async(staff_user)())
    await staff.receive_json_from(timeout=5)
    data = {"positions": [position_data(records.btc)], "orders": []}
    await get_channel_layer().group_send(ORDERS_GROUP, {"type": "orders.update", "data": data})
    assert await staff.receive_json_from(timeout=5) == {"type": "orders", **data}
    assert await comm.receive_nothing(timeout=0.5)


async def test_trading_data_public_shows_them_to_anonymous_sockets(sockets: Connect, settings: Any) -> None:
    settings.TRADING_DATA_PUBLIC = True
    records = await database_sync_to_async(make_records)()
    comm, _ = await sockets("/ws/market/binance/BTCUSDT/")
    first = await comm.receive_json_from(timeout=5)
    assert first["trading"] is True
    assert [p["id"] for p in first["positions"]] == [str(records.btc.pk), str(records.eth.pk)]
    data = {"positions": [position_data(records.btc)], "orders": []}
    await get_channel_layer().group_send(ORDERS_GROUP, {"type": "orders.update", "data": data})
    assert await comm.receive_json_from(timeout=5) == {"type": "orders", **data}


async def test_an_orders_update_reaches_a_connected_staff_page(sockets: Connect) -> None:
    records = await database_sync_to_async(make_records)()
    comm, _ = await sockets("/ws/market/binance/BTCUSDT/", await database_sync_to_async(staff_user)())
    await comm.receive_json_from(timeout=5)  # the snapshot
    stop = await database_sync_to_async(Order.objects.get)(position=records.btc, purpose="stop_loss")
    data = {"positions": [position_data(records.btc)], "orders": [order_data(stop)]}
    await get_channel_layer().group_send(ORDERS_GROUP, {"type": "orders.update", "data": data})
    assert await comm.receive_json_from(timeout=5) == {"type": "orders", **data}


async def test_a_staff_close_is_pushed_to_every_staff_page(sockets: Connect) -> None:
    records = await database_sync_to_async(make_records)()
    comm, _ = await sockets("/ws/market/binance/ETHUSDT/", await database_sync_to_async(staff_user)())
    await comm.receive_json_from(timeout=5)
    client = await database_sync_to_async(client_of)(staff=True)
    response = await database_sync_to_async(client.post)(close_url(records.btc.pk))
    assert response.status_code == 200
    pushed = await comm.receive_json_from(timeout=5)
    assert pushed["type"] == "orders"
    assert [(p["id"], p["status"], p["exit_reason"]) for p in pushed["positions"]] == [
        (str(records.btc.pk), "closed", "manual")
    ]
    assert ("exit", "FILLED") in {(o["purpose"], o["status"]) for o in pushed["orders"]}
    assert await comm.receive_nothing(timeout=0.3)  # once
