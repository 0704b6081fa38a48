"""The live page in a real browser: Playwright driving Debian's chromium (headless) against Daphne, the stream
process and the simulator at 200 trades/s. Staff drops the feed with the page's button; the badge shows it
down, then "recovered N trades"; the chart has no hole; a screenshot is kept. A non-staff session gets no
button and a 403 from the control endpoint. The admin's instrument list follows live prices."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from exchangesim.server import Simulator
from markets.models import Candle, Gap, Instrument, Tick
from tests.conftest import wait_for
from tests.e2e.conftest import ARTIFACTS, start_web
from tests.e2e.test_stream_recovery import (
    SYMBOL,
    assert_equal_to_truth,
    start_stream,
    stop,
    stored,
)
from tradingsite.devstack import Service, free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(fast_sim: Simulator, dev_stack: dict[str, Service]) -> Iterator[str]:
    """Daphne and the stream process on the test database; yields the site's base URL."""
    for symbol, base in ((SYMBOL, "BTC"), ("ETHUSDT", "ETH")):
        Instrument.objects.create(
            exchange="binance",
            symbol=symbol,
            canonical=f"{base}-USDT",
            base=base,
            quote="USDT",
            tick_size=Decimal("0.01"),
            step_size=Decimal("0.00001"),
        )
    port = free_port()
    env = os.environ | {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": dev_stack["redis"].uri,
        "MONGODB_DB": settings.DATABASES["default"]["NAME"],
        "MARKET_SIMULATED": "1",
        "BINANCE_REST_URL": fast_sim.url,
        "BINANCE_WS_URL": fast_sim.ws_url,
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # the sessions made here must verify there
    }
    web = start_web(port, env)
    stream = start_stream(fast_sim, dev_stack, "--stall-seconds", "3")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for("live ticks", lambda: Tick.objects.filter(symbol=SYMBOL).count() > 200, 30, stream)
        wait_for("Daphne", lambda: _answers(base_url), 30, web)
        yield base_url
    finally:
        web.terminate()
        web_out, _ = web.communicate(timeout=30)
        out = stop(stream)
        assert "Traceback" not in web_out, web_out
        assert "Traceback" not in out, out


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _session(user: object, base_url: str) -> list[dict[str, str]]:
    client = Client()
    client.force_login(user)
    return [
        {
            "name": settings.SESSION_COOKIE_NAME,
            "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
            "url": base_url,
        }
    ]


def test_staff_drops_the_feed_and_the_page_shows_it_recover(site: str, chromium: object, fast_sim: Simulator) -> None:
    users = get_user_model().objects
    staff = users.create_user("ops", password="a-long-test-password", is_staff=True, is_superuser=True)
    viewer = users.create_user("viewer", password="a-long-test-password")

    # A non-staff session: no button, and the control endpoint answers 403 even with a valid CSRF token.
    ctx = chromium.new_context()
    ctx.add_cookies(_session(viewer, site))
    page = ctx.new_page()
    page.goto(f"{site}/")
    assert page.url.endswith(f"/market/binance/{SYMBOL}/")
    page.wait_for_function("document.getElementById('last-price').textContent !== '—'", timeout=15_000)
    assert page.text_content("#user") == "viewer"
    assert page.locator("#drop-button").count() == 0
    token = page.evaluate("JSON.parse(document.getElementById('market-config').textContent).csrf")
    resp = page.request.post(f"{site}/market/binance/feed/drop", headers={"X-CSRFToken": token}, data={"seconds": 10})
    assert resp.status == 403
    assert resp.json()["detail"] == "only staff may control the feed"
    ctx.close()
    assert not Gap.objects.exists(), "a refused drop must not reach the stream"

    # Staff: a changing price, the drop button, the badge going down and coming back with the count.
    ctx = chromium.new_context(viewport={"width": 1400, "height": 800})
    ctx.add_cookies(_session(staff, site))
    page = ctx.new_page()
    page.goto(f"{site}/market/binance/{SYMBOL}/")
    page.wait_for_function("document.getElementById('last-price').textContent !== '—'", timeout=15_000)
    assert page.text_content("#user") == "ops"
    first = page.text_content("#last-price")
    page.wait_for_function(f"document.getElementById('last-price').textContent !== {first!r}", timeout=15_000)
    assert re.fullmatch(r"\d+\.\d\d", page.text_content("#last-price") or ""), "cut to the tick size"
    page.wait_for_function("document.getElementById('feed-badge').textContent === 'live'", timeout=15_000)
    assert page.locator("text=simulated").count() == 1
    assert page.locator("#tape tbody tr").count() > 10

    pressed = time.monotonic()
    page.click("#drop-button")
    page.wait_for_function("document.getElementById('feed-badge').textContent.startsWith('feed down')", timeout=10_000)
    print(f"\nbadge shows the feed down {time.monotonic() - pressed:.1f} s after the press")
    page.wait_for_function(
        "/recovered [0-9,]+ trades/.test(document.getElementById('feed-badge').textContent)", timeout=40_000
    )
    badge = page.text_content("#feed-badge") or ""
    print(f"badge: {badge!r}, {time.monotonic() - pressed:.1f} s after the press")
    gap = Gap.objects.get(symbol=SYMBOL, kind="trades")
    assert gap.state == "filled"
    assert int(re.search(r"recovered ([0-9,]+) trades", badge).group(1).replace(",", "")) == gap.recovered
    assert gap.recovered == gap.missing > 100, "about 10 s of aggregate trades were missed and all recovered"
    assert page.locator("#gaps li[data-state=filled]").count() == 1

    # The chart has no hole: every minute from the first to the last candle it draws, each equal to storage
    # once the minutes the gap touched were rebuilt (they are pushed as candle updates).
    time.sleep(3)
    assert page.evaluate("window.market.candles.size") > 150, "the chart opens on three hours of history"
    drawn = page.evaluate("[...window.market.candles.values()].map(c => [c.time, c.close, c.volume, c.trades])")
    times = sorted(t for t, *_ in drawn)
    assert times == list(range(times[0], times[-1] + 60_000, 60_000)), "a minute is missing from the chart"
    gap_minutes = {
        int(d["ts"].replace(tzinfo=UTC).timestamp() * 1000) // 60_000 * 60_000
        for d in Tick.objects.filter(symbol=SYMBOL, trade_id__gte=gap.start, trade_id__lte=gap.end).values("ts")
    }
    assert gap_minutes <= set(times)
    stored_candles = {
        int(c.open_time.timestamp() * 1000): c
        for c in Candle.objects.filter(
            symbol=SYMBOL, interval="1m", open_time__gte=datetime.fromtimestamp(times[0] / 1000, UTC)
        )
    }
    for t, close, volume, trades in drawn:
        if t in gap_minutes and stored_candles[t].closed:
            c = stored_candles[t]
            assert (close, volume, trades) == (str(c.close), str(c.volume), c.trades), f"minute {t} differs"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "live-page-after-drop.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")

    # The admin's instrument list follows the same channel.
    page.goto(f"{site}/admin/markets/instrument/")
    cell = page.locator(f".live-price[data-instrument='binance:{SYMBOL}']")
    before = cell.text_content()
    page.wait_for_function(
        f"document.querySelector(\".live-price[data-instrument='binance:{SYMBOL}']\").textContent !== {before!r}",
        timeout=15_000,
    )
    ctx.close()
    assert_equal_to_truth(fast_sim, stored())
