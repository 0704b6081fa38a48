"""The live page's Positions and Recent orders panels in a real browser: Playwright driving Debian's chromium
(headless) against Daphne on the test database. The paper book is listed from the first snapshot (an open
position, a closed one with its realised PnL and exit reason); a position and its orders pushed on
``orders.update`` (as the stream's trader pushes them) appear without a reload; a visitor gets no buttons; staff
close the open position with its button and see it closed by hand, as stored."""

from __future__ import annotations

import os
import subprocess
import sys
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

from orders.live import ORDERS_GROUP, order_data, position_data
from orders.models import Order, Position
from orders.services import act_on_signal
from tests.conftest import wait_for
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_live_page import ROOT, _answers, _session
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
    web = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tradingsite.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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


def test_panels_fill_live_and_staff_close_a_position(site: str, chromium: Any) -> None:
    book = make_records()  # BTCUSDT open, ETHUSDT closed at its take-profit
    users = get_user_model().objects
    staff = users.create_user("ops", password="a-long-test-password", is_staff=True)

    # A visitor: the book from the first snapshot, no buttons.
    page = chromium.new_page()
    page.goto(f"{site}{PAGE}")
    page.locator(row("positions", book.btc.pk)).wait_for(timeout=10_000)
    btc_cells = page.locator(row("positions", book.btc.pk) + " td").all_inner_texts()
    assert btc_cells == ["BTCUSDT", "0.025", "40020", "38800", "42400", "40000", "-1.50", "open"]
    eth_cells = page.locator(row("positions", book.eth.pk) + " td").all_inner_texts()
    assert eth_cells[6] == f"+{book.eth.realised_pnl:.2f}"
    assert eth_cells[7] == "closed · take-profit"
    assert page.locator("#orders tbody tr[data-id]").count() == 6
    assert page.locator("#trading button").count() == 0
    page.close()

    # Staff: Close and Cancel buttons; a position opened meanwhile appears when the trader pushes it.
    ctx = chromium.new_context(viewport={"width": 1400, "height": 900})
    ctx.add_cookies(_session(staff, site))
    page = ctx.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the "close at the market now?" confirmation
    page.goto(f"{site}{PAGE}")
    page.locator(row("positions", book.btc.pk) + " button").wait_for(timeout=10_000)
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
        format(entry.qty.normalize(), "f"),
    ]
    assert page.locator(row("positions", eth2.pk) + " td").nth(7).inner_text() == "open"
    assert page.locator("#orders button[data-action=cancel]").count() == 4

    page.click(row("positions", book.btc.pk) + " button")
    page.locator(row("positions", book.btc.pk) + "[data-status=closed]").wait_for(timeout=5_000)
    closed = page.locator(row("positions", book.btc.pk) + " td").all_inner_texts()
    btc = Position.objects.get(pk=book.btc.pk)
    assert (btc.status, btc.exit_reason) == ("closed", "manual")
    assert closed[5] == format(btc.exit_price.normalize(), "f")
    assert closed[6] == f"{btc.realised_pnl:.2f}"
    assert closed[7] == "closed · closed by hand"
    exit_order = Order.objects.get(position=btc, purpose="exit")
    page.locator(row("orders", exit_order.pk)).wait_for(timeout=5_000)
    assert page.locator("#orders button[data-action=cancel]").count() == 2  # only the new ETHUSDT protection
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "live-page-positions.png"
    page.screenshot(path=str(shot))
    print(f"\npositions: {closed}; screenshot: {shot}")
    ctx.close()
