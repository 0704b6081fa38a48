"""The live page's Positions and Recent orders panels in a real browser: Playwright driving Debian's chromium
(headless) against Daphne on the test database. A visitor gets neither the panels (a "staff only" note instead)
nor any trading record on the page's socket, in its snapshot or when the trader pushes a change. Staff get the paper
book from the first snapshot (an open position, a closed one with its realised PnL and exit reason); a position and
its orders pushed on ``orders.update`` (as the stream's trader pushes them) appear without a reload; staff close the
open position with its button and see it closed by hand, as stored."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model

from markets.numbers import plain
from orders.live import ORDERS_GROUP, order_data, position_data
from orders.models import Order, Position
from orders.services import act_on_signal
from tests.conftest import wait_for
from tests.e2e.conftest import ARTIFACTS, start_web
from tests.e2e.test_live_page import _answers, _session
from tests.orders.paper_helpers import T0, signal
from tests.orders.test_api import make_records
from tradingsite.devstack import Service, free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PAGE = "/market/binance/BTCUSDT/"


@pytest.fixture
def site(dev_stack: dict[str, Service]) -> Iterator[str]:
    """Daphne on the test database (no stream: the test pushes what the stream would); yields its base URL."""
    port = free_port()
    env = os.environ | {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": dev_stack["redis"].uri,
        "MONGODB_DB": settings.DATABASES["default"]["NAME"],
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        # Nothing listens there: the page's request for earlier candles fails at once instead of leaving the box.
        "BINANCE_REST_URL": f"http://127.0.0.1:{free_port()}",
    }
    web = start_web(port, env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for("Daphne", lambda: _answers(base_url), 30, web)
        yield base_url
    finally:
        web.terminate()
        out, _ = web.communicate(timeout=30)
        assert "Traceback" not in out, out


def push(positions: list[Position], orders: list[Order]) -> None:
    """What the stream's trader sends when positions or orders change. From a thread of its own: Playwright's
    event loop holds this one."""
    data = {"positions": [position_data(p) for p in positions], "orders": [order_data(o) for o in orders]}
    send = async_to_sync(get_channel_layer().group_send)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(send, ORDERS_GROUP, {"type": "orders.update", "data": data}).result(timeout=10)


def row(kind: str, pk: object) -> str:
    return f"#{kind} tbody tr[data-id='{pk}']"


def messages_of(page: Any) -> list[dict[str, Any]]:
    """Every message ``page``'s sockets receive from now on, as they arrive (a list the caller reads)."""
    got: list[dict[str, Any]] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: got.append(json.loads(payload))))
    return got


def until_message(page: Any, got: list[dict[str, Any]], kind: str, seconds: float = 10.0) -> dict[str, Any]:
    """The first message of type ``kind`` in ``got``, waiting on ``page`` (its events arrive while it waits)."""
    deadline = time.monotonic() + seconds
    while not any(m.get("type") == kind for m in got):
        assert time.monotonic() < deadline, f"no {kind} message in {seconds} s: {[m.get('type') for m in got]}"
        page.wait_for_timeout(50)
    return next(m for m in got if m.get("type") == kind)


def test_panels_fill_live_and_staff_close_a_position(site: str, chromium: Any) -> None:
    book = make_records()  # BTCUSDT open, ETHUSDT closed at its take-profit
    users = get_user_model().objects
    staff = users.create_user("ops", password="a-long-test-password", is_staff=True)

    # A visitor: a note instead of the panels, and a snapshot without positions or orders.
    visitor = chromium.new_page()
    seen = messages_of(visitor)
    visitor.goto(f"{site}{PAGE}")
    assert "for staff only" in visitor.get_by_test_id("trading-note").inner_text(timeout=10_000)
    first = until_message(visitor, seen, "snapshot")
    assert first["trading"] is False
    assert "positions" not in first
    assert "orders" not in first
    assert visitor.locator("#trading, #positions, #orders").count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    visitor.screenshot(path=str(ARTIFACTS / "live-page-visitor.png"))

    # Staff: the book from the first snapshot, with Close and Cancel buttons; a position opened meanwhile appears
    # when the trader pushes it (and does not reach the visitor's page).
    ctx = chromium.new_context(viewport={"width": 1400, "height": 900})
    ctx.add_cookies(_session(staff, site))
    page = ctx.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the "close at the market now?" confirmation
    page.goto(f"{site}{PAGE}")
    page.locator(row("positions", book.btc.pk) + " button").wait_for(timeout=10_000)
    btc_cells = page.locator(row("positions", book.btc.pk) + " td").all_inner_texts()
    # Printed by the server (markets.numbers.plain): prices to the tick 0.01, qty to the step 0.00001, P&L exact.
    assert btc_cells[:8] == ["BTCUSDT", "0.02500", "40020.00", "38800.00", "42400.00", "40000.00", "-1.5005", "open"]
    eth_cells = page.locator(row("positions", book.eth.pk) + " td").all_inner_texts()
    assert eth_cells[6] == f"+{plain(book.eth.realised_pnl)}"
    assert eth_cells[7] == "closed · take-profit"
    assert page.locator("#orders tbody tr[data-id]").count() == 6
    assert page.locator(row("positions", book.eth.pk) + " button").count() == 0  # closed: nothing to close
    assert page.locator("#orders button[data-action=cancel]").count() == 2  # BTCUSDT's stop-loss and take-profit

    acted = act_on_signal(
        signal("BUY", minute=5, symbol="ETHUSDT"), book.paper, price=Decimal(2100), now=T0 + timedelta(minutes=5)
    )
    assert acted is not None
    eth2 = acted.position
    assert eth2 is not None
    entry = Order.objects.get(position=eth2, purpose="entry")
    push([eth2], list(Order.objects.filter(position=eth2)))
    page.locator(row("orders", entry.pk)).wait_for(timeout=5_000)
    assert page.locator(row("orders", entry.pk) + " td").all_inner_texts()[1:7] == [
        "ETHUSDT",
        "BUY",
        "MARKET",
        "entry",
        "FILLED",
        plain(entry.qty, 5),
    ]
    assert page.locator(row("positions", eth2.pk) + " td").nth(7).inner_text() == "open"
    assert page.locator("#orders button[data-action=cancel]").count() == 4
    visitor.wait_for_timeout(500)  # the push reached the staff page; anything sent to the visitor is in by now
    assert [m["type"] for m in seen if m["type"] in ("orders", "snapshot")] == ["snapshot"]
    assert not any(str(eth2.pk) in json.dumps(m) or str(book.btc.pk) in json.dumps(m) for m in seen)
    visitor.close()

    page.click(row("positions", book.btc.pk) + " button")
    page.locator(row("positions", book.btc.pk) + "[data-status=closed]").wait_for(timeout=5_000)
    closed = page.locator(row("positions", book.btc.pk) + " td").all_inner_texts()
    btc = Position.objects.get(pk=book.btc.pk)
    assert (btc.status, btc.exit_reason) == ("closed", "manual")
    assert closed[5] == plain(btc.exit_price, 2)
    assert closed[6] == plain(btc.realised_pnl)
    assert closed[7] == "closed · closed by hand"
    exit_order = Order.objects.get(position=btc, purpose="exit")
    page.locator(row("orders", exit_order.pk)).wait_for(timeout=5_000)
    assert page.locator("#orders button[data-action=cancel]").count() == 2  # only the new ETHUSDT protection
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "live-page-positions.png"
    page.screenshot(path=str(shot))
    print(f"\npositions: {closed}; screenshot: {shot}")
    ctx.close()
