"""The live page in a real browser after an unrecoverable hole: the minutes Binance no longer serves are drawn
from Coinbase's candles, in their own colour, and the chart's legend names Coinbase as their source; the
strategy's stored signals are listed, newest first."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from exchangesim.server import Simulator, running_in_thread
from markets.models import Gap
from signals.rules import Action, Decision, Vote
from signals.services import signals_store
from tests.conftest import sim_config, wait_for
from tests.e2e.conftest import ARTIFACTS, start_web
from tests.e2e.test_live_page import _answers
from tests.markets.test_reconcile import fill_the_hole, lose_ten_minutes, ms
from tradingsite.devstack import Service, free_port

ROOT = Path(__file__).resolve().parents[2]
MINUTE = timedelta(minutes=1)
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sim(settings: Any) -> Iterator[Simulator]:
    with running_in_thread(sim_config(rate=20.0, history_days=0.1)) as s:
        settings.BINANCE_REST_URL = s.url
        settings.COINBASE_REST_URL = s.venue_url("coinbase")
        yield s


def decision(t: datetime, action: Action) -> Decision:
    vote = Vote("ma_cross", Decimal("0.30") if action is Action.BUY else Decimal("-0.30"), "SMA20 crossed SMA50")
    return Decision(
        "ta-vote",
        1,
        "binance",
        "BTCUSDT",
        "1m",
        t,
        action,
        Decimal("0.30"),
        vote.weight,
        (vote,),
        (vote.reason,),
        {"sma20": 1.0},
    )


def test_the_chart_shows_candles_filled_from_another_venue_as_such(
    sim: Simulator, dev_stack: dict[str, Service], chromium: Any
) -> None:
    start, end, lost = lose_ten_minutes(sim)
    assert fill_the_hole().state == Gap.State.UNRECOVERABLE
    signalled = {start + 5 * MINUTE: Action.BUY, start + 25 * MINUTE: Action.SELL}
    signals_store(decisions=[decision(t, a) for t, a in signalled.items()])
    port = free_port()
    env = os.environ | {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": dev_stack["redis"].uri,
        "MONGODB_DB": settings.DATABASES["default"]["NAME"],
        "MARKET_SIMULATED": "1",
        "BINANCE_REST_URL": sim.url,
        "COINBASE_REST_URL": sim.venue_url("coinbase"),
    }
    web = start_web(port, env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for("Daphne", lambda: _answers(base_url), 30, web)
        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{base_url}/market/binance/BTCUSDT/")
        legend = page.get_by_test_id("chart-legend")
        legend.wait_for(state="visible", timeout=20_000)
        text = legend.inner_text()
        page.get_by_test_id("signals").locator("li[data-decision]").first.wait_for(timeout=10_000)
        signal_items = page.get_by_test_id("signals").locator("li[data-decision]").all_inner_texts()
        borrowed = page.evaluate("""() => [...window.market.candles.values()]
            .filter((c) => c.source === "coinbase").map((c) => c.time).sort((a, b) => a - b)""")
        own = page.evaluate(
            """([lo, hi]) => [...window.market.candles.values()]
            .filter((c) => c.time >= lo && c.time < hi && c.source !== "coinbase").length""",
            [ms(start), ms(end)],
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "live-page-filled-from-coinbase.png"
        page.screenshot(path=str(shot))
        print(
            f"\nlegend: {text!r}; {len(borrowed)} candles from coinbase, {own} of binance's own around them; "
            f"screenshot: {shot}"
        )
    finally:
        web.terminate()
        out, _ = web.communicate(timeout=30)
    assert "filled from coinbase" in text
    print(f"signal list: {signal_items}")
    assert [item.split()[1] for item in signal_items] == ["SELL", "BUY"], "the newest signal first"
    assert [item.split()[0] for item in signal_items] == [f"{t:%H:%M}" for t in sorted(signalled, reverse=True)]
    assert borrowed == [ms(m) for m in lost]
    assert own == 20
    assert "Traceback" not in out, out
