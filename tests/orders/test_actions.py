"""The staff actions behind the live page's Close and Cancel buttons, and the page's socket for the trading
records, against the real Redis channel layer and MongoDB: CSRF enforced, 403 for anyone who is not staff, 404
for an unknown or ill-formed id, 409 with the reason for a record that cannot be acted on, a paper position closed
by hand at its last price (else its symbol's last trade); a staff socket's first snapshot carries positions and
orders, and an ``orders.update`` (from the stream's trader or a staff action) reaches a connected staff page, while
anyone else's socket gets neither (unless ``TRADING_DATA_PUBLIC``). A close is all or nothing, paper and Binance
(on the simulator) alike: one that cannot complete is a 409 with the reason and leaves the position protected."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from decimal import Decimal as D
from typing import Any

import pytest
import requests
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.test import Client

from exchangesim.server import Simulator
from markets.exchanges.base import Source, TradeTick
from markets.places import Places, priced
from markets.services import ticks_ingest
from orders.live import ORDER_NUMBERS, ORDERS_GROUP, POSITION_NUMBERS, order_data, position_data
from orders.models import Order, Position
from tests.conftest import API_KEY, API_SECRET
from tests.live import test_consumers
from tests.orders.binance_helpers import SYMBOL, account, approved_entry, executor, now, raw_client
from tests.orders.test_api import Records, make_records

pytestmark = pytest.mark.django_db(transaction=True)  # the consumer reads on threads of its own
sockets = test_consumers.sockets  # the consumer sockets fixture, each ended with a disconnect
Connect = test_consumers.Connect
PLACES = Places(price=2, qty=5)  # make_records' instruments: tick 0.01, step 0.00001


def on_page(data: dict[str, Any]) -> dict[str, Any]:
    """An ``orders.update``'s data as the page gets it: decimals printed by ``markets.numbers.plain``."""
    return {
        "positions": [priced(p, POSITION_NUMBERS, PLACES) for p in data["positions"]],
        "orders": [priced(o, ORDER_NUMBERS, PLACES) for o in data["orders"]],
    }


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
    assert first["positions"][0] == priced(position_data(btc), POSITION_NUMBERS, PLACES)
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
    assert await staff.receive_json_from(timeout=5) == {"type": "orders", **on_page(data)}
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
    assert await comm.receive_json_from(timeout=5) == {"type": "orders", **on_page(data)}


async def test_an_orders_update_reaches_a_connected_staff_page(sockets: Connect) -> None:
    records = await database_sync_to_async(make_records)()
    comm, _ = await sockets("/ws/market/binance/BTCUSDT/", await database_sync_to_async(staff_user)())
    await comm.receive_json_from(timeout=5)  # the snapshot
    stop = await database_sync_to_async(Order.objects.get)(position=records.btc, purpose="stop_loss")
    data = {"positions": [position_data(records.btc)], "orders": [order_data(stop)]}
    await get_channel_layer().group_send(ORDERS_GROUP, {"type": "orders.update", "data": data})
    assert await comm.receive_json_from(timeout=5) == {"type": "orders", **on_page(data)}


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


# ---- all or nothing: a close that cannot complete leaves the protection in place --------------------------------

FOREIGN_ENTRY = "web_5f2c9a0d41b84e7c9d3e"  # an id Binance's own site would give: not one of the trader's


@pytest.fixture
def binance_here(sim_thread: Simulator, settings: Any) -> Simulator:
    """Binance testnet trading configured on the simulator, as a server with keys would have it."""
    settings.BINANCE_API_KEY, settings.BINANCE_API_SECRET = API_KEY, API_SECRET
    settings.BINANCE_REST_URL, settings.TRADING_MODE = sim_thread.url, "testnet"
    return sim_thread


def binance_position(sim: Simulator, mode: str = "testnet") -> Position:
    """A position (testnet unless told) opened by the executor on the simulator and protected by its OCO."""
    price = Decimal(raw_client(sim).get_symbol_ticker(symbol=SYMBOL)["price"])
    position = executor(sim, mode=mode).open(approved_entry(price), now())
    assert position is not None
    assert (position.status, bool(position.protection)) == ("open", True)
    return position


def protection_of(sim: Simulator, position: Position) -> tuple[list[tuple[str, str]], list[str]]:
    """The position's protective orders as stored (purpose, status) and its OCO's legs' statuses on the exchange."""
    rows = Order.objects.filter(position=position, purpose__in=("stop_loss", "take_profit")).order_by("purpose")
    stored = [(o.purpose, o.status) for o in rows]
    lists = account(sim).lists
    on_exchange = [leg.status for leg in lists[int(position.protection)].legs] if position.protection else []
    return stored, on_exchange


PROTECTED = ([("stop_loss", "NEW"), ("take_profit", "NEW")], ["NEW", "NEW"])


def test_a_close_of_a_position_whose_entry_is_not_ours_is_a_409_and_keeps_its_protection(
    binance_here: Simulator,
) -> None:
    """The position's entry id was not made by the trader, so no exit id can be derived from it: the close is
    refused before anything is sent, and the OCO keeps working (it used to be cancelled, then a 500)."""
    position = binance_position(binance_here)
    Position.objects.filter(pk=position.pk).update(entry_client_order_id=FOREIGN_ENTRY)
    Order.objects.filter(client_order_id=position.entry_client_order_id).update(client_order_id=FOREIGN_ENTRY)
    orders_before = len(account(binance_here).orders)
    response = client_of(staff=True).post(close_url(position.pk))
    assert response.status_code == 409, response.content
    assert response.json()["error"] == "conflict"
    assert FOREIGN_ENTRY in response.json()["detail"]
    assert "protection stays" in response.json()["detail"]
    position.refresh_from_db()
    assert (position.status, position.exit_reason) == ("open", "")
    assert protection_of(binance_here, position) == PROTECTED
    assert len(account(binance_here).orders) == orders_before


def test_a_paper_close_of_a_position_whose_entry_is_not_ours_is_a_409_and_changes_nothing(records: Records) -> None:
    """Paper too: the position is not claimed and its stop-loss and take-profit stay NEW."""
    Position.objects.filter(pk=records.btc.pk).update(entry_client_order_id=FOREIGN_ENTRY)
    response = client_of(staff=True).post(close_url(records.btc.pk))
    assert response.status_code == 409, response.content
    assert FOREIGN_ENTRY in response.json()["detail"]
    btc = Position.objects.get(pk=records.btc.pk)
    assert (btc.status, btc.exit_price, btc.realised_pnl) == ("open", None, None)
    assert sorted(Order.objects.filter(position=btc).values_list("purpose", "status")) == [
        ("entry", "FILLED"),
        ("stop_loss", "NEW"),
        ("take_profit", "NEW"),
    ]


def test_a_staff_close_on_binance_cancels_the_oco_and_sells(binance_here: Simulator) -> None:
    position = binance_position(binance_here)
    oco = account(binance_here).lists[int(position.protection)]
    response = client_of(staff=True).post(close_url(position.pk))
    assert response.status_code == 200, response.content
    position.refresh_from_db()
    assert (position.status, position.exit_reason, position.protection) == ("closed", "manual", "")
    assert [leg.status for leg in oco.legs] == ["CANCELED", "CANCELED"]
    assert response.json()["detail"].startswith("BTCUSDT position closed at ")


def test_a_staff_close_acts_in_the_positions_mode(binance_here: Simulator) -> None:
    """A live position is closed by a live executor (its exit stored as live), whatever TRADING_MODE says now."""
    position = binance_position(binance_here, mode="live")
    assert client_of(staff=True).post(close_url(position.pk)).status_code == 200
    assert Order.objects.get(position=position, purpose="exit").mode == "live"


def test_a_close_of_more_than_the_account_holds_is_refused_before_anything_is_sent(binance_here: Simulator) -> None:
    """The position says 5 BTC, the account holds about 2: refused with the figures, the OCO still working."""
    position = binance_position(binance_here)
    Position.objects.filter(pk=position.pk).update(qty=Decimal(5))
    orders_before = len(account(binance_here).orders)
    response = client_of(staff=True).post(close_url(position.pk))
    assert response.status_code == 409, response.content
    detail = response.json()["detail"]
    assert "the account holds" in detail
    assert "less than its 5" in detail
    assert "nothing was sent, its protection stays" in detail
    position.refresh_from_db()
    assert position.status == "open"
    assert protection_of(binance_here, position) == PROTECTED
    assert len(account(binance_here).orders) == orders_before


def test_an_oco_binance_will_not_cancel_stays_and_the_close_is_a_409(binance_here: Simulator) -> None:
    position = binance_position(binance_here)
    fault = {"path_prefix": "/api/v3/orderList", "method": "DELETE", "status": 400, "count": 1}
    assert requests.post(f"{binance_here.url}/_sim/rest/fault", json=fault, timeout=5).status_code == 200
    response = client_of(staff=True).post(close_url(position.pk))
    assert response.status_code == 409, response.content
    assert "refused to cancel the protection" in response.json()["detail"]
    assert "it stays in place" in response.json()["detail"]
    position.refresh_from_db()
    assert position.status == "open"
    assert protection_of(binance_here, position) == PROTECTED


def test_an_exit_binance_refuses_puts_the_protection_back(binance_here: Simulator) -> None:
    """The OCO is cancelled, then the market sell is refused: a new OCO protects the position at the same levels
    before the 409 answers, and a later close goes through."""
    position = binance_position(binance_here)
    first_list = int(position.protection)
    fault = {"path_prefix": "/api/v3/order", "method": "POST", "status": 400, "count": 1}
    assert requests.post(f"{binance_here.url}/_sim/rest/fault", json=fault, timeout=5).status_code == 200
    response = client_of(staff=True).post(close_url(position.pk))
    assert response.status_code == 409, response.content
    detail = response.json()["detail"]
    assert detail.startswith("Binance refused the exit of the BTCUSDT position (An unknown error occurred")
    assert detail.endswith("its protection was placed again")
    position.refresh_from_db()
    assert position.status == "open"
    assert int(position.protection) != first_list
    assert [leg.status for leg in account(binance_here).lists[first_list].legs] == ["CANCELED", "CANCELED"]
    again = account(binance_here).lists[int(position.protection)]
    assert [(leg.type, leg.status) for leg in again.legs] == [("STOP_LOSS", "NEW"), ("LIMIT_MAKER", "NEW")]
    assert {leg.stop_price or leg.price for leg in again.legs} == {position.stop_price, position.take_profit_price}
    exit_row = Order.objects.get(position=position, purpose="exit")
    assert exit_row.status == "REJECTED"
    assert client_of(staff=False).post(close_url(position.pk)).status_code == 403  # still guarded
    staff = Client()
    staff.force_login(get_user_model().objects.get(username="ops"))
    assert staff.post(close_url(position.pk)).status_code == 200
    position.refresh_from_db()
    assert (position.status, position.exit_reason) == ("closed", "manual")


def test_a_stop_loss_binance_will_not_cancel_is_a_409_and_stays(binance_here: Simulator) -> None:
    """Cancelling a protective order cancels its OCO; refused, the answer says so and nothing changed."""
    position = binance_position(binance_here)
    stop = Order.objects.get(position=position, purpose="stop_loss")
    fault = {"path_prefix": "/api/v3/orderList", "method": "DELETE", "status": 400, "count": 1}
    assert requests.post(f"{binance_here.url}/_sim/rest/fault", json=fault, timeout=5).status_code == 200
    response = client_of(staff=True).post(cancel_url(stop.pk))
    assert response.status_code == 409, response.content
    assert "refused to cancel the protection" in response.json()["detail"]
    position.refresh_from_db()
    assert protection_of(binance_here, position) == PROTECTED
