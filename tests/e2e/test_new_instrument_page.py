"""A newly added instrument's live page in a real browser, as staff, before any trade of it is stored: Daphne on the
test database and a simulator that does not list the symbol (the instrument was stored from another deployment of
the venue). The page says there is no trade yet; it shows no "could not be loaded" error."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from exchangesim.server import running_in_thread
from markets.models import Instrument
from tests.conftest import sim_config, wait_for
from tests.e2e.conftest import start_web
from tests.e2e.test_live_page import _answers, _session
from tradingsite.devstack import Service, free_port

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
NO_TRADES = "No trades stored yet for XRPUSDT: the chart starts with its first trade"


def test_a_new_instruments_page_says_it_has_no_trade_yet(chromium: object, dev_stack: dict[str, Service]) -> None:
    Instrument.objects.create(exchange="binance", symbol="XRPUSDT", canonical="XRP-USDT", base="XRP", quote="USDT")
    staff = get_user_model().objects.create_user("ops", password="a-long-test-password", is_staff=True)
    with running_in_thread(sim_config(rate=1.0, history_days=0.05)) as sim:  # lists BTCUSDT and ETHUSDT only
        port = free_port()
        env = os.environ | {
            "MONGODB_URI": dev_stack["mongo"].uri,
            "REDIS_URL": dev_stack["redis"].uri,
            "MONGODB_DB": settings.DATABASES["default"]["NAME"],
            "MARKET_SIMULATED": "1",
            "BINANCE_REST_URL": sim.url,
            "BINANCE_WS_URL": sim.ws_url,
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # the session made here must verify there
        }
        web = start_web(port, env)
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_for("Daphne", lambda: _answers(base_url), 30, web)
            ctx = chromium.new_context()  # type: ignore[attr-defined]
            ctx.add_cookies(_session(staff, base_url))
            page = ctx.new_page()
            page.goto(f"{base_url}/market/binance/XRPUSDT/")
            page.wait_for_function(
                f"document.getElementById('chart-banner').textContent === {NO_TRADES!r}", timeout=15_000
            )
            assert page.text_content("#feed-badge") == "no trades stored yet · waiting for the feed"
            assert page.text_content("#last-price") == "—"
            ctx.close()
        finally:
            web.terminate()
            out, _ = web.communicate(timeout=30)
    assert "Traceback" not in out, out
    assert "Bad Gateway" not in out, out
