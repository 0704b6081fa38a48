"""A REST backfill spends the exchange's request-weight budget to the full and never earns a 429.

The pure part (:class:`markets.exchanges.weight.WeightBudget` on a fake clock) and a trades backfill against the
simulator with a small budget over short windows: the simulator counts the weight of every window, and every full
window of the run is at least 90 % of the limit, with no 429 and nothing sent during a Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from exchangesim.server import running_in_thread
from markets.backfill import trades_backfill
from markets.exchanges.binance.rest import BinanceRest
from markets.exchanges.weight import Ticket, WeightBudget, reported_weight
from markets.id_pages import page_bounds
from markets.models import Tick
from tests.conftest import sim_config


class Clock:
    """A clock that moves only when slept on."""

    def __init__(self, t: float) -> None:
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_the_budget_fills_a_window_then_waits_for_the_next() -> None:
    """Reservations go out until the next would pass the cap, then the requester sleeps to the window's start
    plus the margin; the new window starts with what is still in flight."""
    clock = Clock(60 * 16_667 + 20.0)  # 20 s into a minute
    budget = WeightBudget("binance", 100, 60, clock=clock, reserve=0.0, margin=0.25)
    tickets = [budget.take(4, clock.sleep) for _ in range(25)]
    assert budget.used == 100
    assert clock.slept == []
    for t in tickets[:-1]:
        budget.settle(t, (4 * (tickets.index(t) + 1), 60))
    late = budget.take(4, clock.sleep)  # the 26th: the next window, 40.25 s on
    assert clock.slept == [pytest.approx(40.25)]
    assert late.window == tickets[0].window + 1
    assert budget.used == 8  # the 25th, still in flight when the window turned, is counted in the new one too


def test_what_others_spent_is_learned_from_the_header() -> None:
    """A count reported higher than ours (another requester of the address) raises ours; a lower one (requests of
    ours in flight) does not lower it; a count of another window is ignored, and the header names the window."""
    clock = Clock(600.0)
    budget = WeightBudget("binance", 6000, 60, clock=clock)
    assert budget.cap == 5940
    first = budget.take(4, clock.sleep)
    second = budget.take(4, clock.sleep)
    budget.settle(first, (5000, 60))
    assert budget.used == 5000
    budget.settle(second, (12, 60))
    assert budget.used == 5000
    budget.settle(Ticket(4, first.window - 1), (5900, 60))
    assert budget.used == 5000
    assert reported_weight({"x-mbx-used-weight-5s": "17", "Content-Type": "json"}) == (17, 5)
    assert reported_weight({"X-MBX-USED-WEIGHT-1M": "4"}) == (4, 60)
    assert reported_weight({}) is None
    budget.settle(budget.take(4, clock.sleep), (8, 5))
    assert budget.window == 5


def test_pages_cut_an_id_range_without_overlap() -> None:
    assert list(page_bounds(10, 2509, 1000)) == [(10, 1009), (1010, 2009), (2010, 2509)]
    assert list(page_bounds(5, 5, 1000)) == [(5, 5)]
    assert list(page_bounds(6, 5, 1000)) == []


WINDOW_S = 4
LIMIT = 40  # ten aggTrades pages per window: 2.5 a second, well within what the client does here
PAGES = 52


@pytest.mark.slow
def test_a_rest_backfill_uses_every_full_window_to_90_percent_without_a_429(transactional_db: None) -> None:
    """Over five windows of a small budget, the simulator counts at least 90 % of the limit in every window the
    backfill spans whole, answers no 429 of its own, and sees no request before a Retry-After it asked for (one
    429 is injected on the first aggTrades request)."""
    config = sim_config(rate=50.0, history_days=0.05, weight_limit=LIMIT, weight_window_s=WINDOW_S)
    with running_in_thread(config) as sim:
        venue: Any = sim.venues["binance"]
        requests.post(
            f"{sim.url}/_sim/rest/fault",
            json={"path_prefix": "/api/v3/aggTrades", "status": 429, "retry_after": 1, "count": 1},
            timeout=5,
        ).raise_for_status()
        adapter = BinanceRest(sim.url)
        adapter.instruments(["BTCUSDT"])  # learns the limit and the window
        assert (adapter.budget.limit, adapter.budget.window) == (LIMIT, WINDOW_S)
        end = datetime.now(UTC) - timedelta(minutes=2)
        first = adapter.trades_by_time("BTCUSDT", end - timedelta(hours=1), end, limit=1)[0]
        last_id = first.trade_id + PAGES * 1000 - 1
        start = first.ts
        stop = adapter.trades_from_id("BTCUSDT", last_id + 1, limit=1)[0].ts
        summary = trades_backfill(
            adapter=adapter, exchange="binance", symbol="BTCUSDT", start=start, end=stop, candles=False
        )
        adapter.close()
        status = requests.get(f"{sim.url}/_sim/status", timeout=5).json()
        [past] = [c.past for c in venue.limiter.clients.values()]
    assert summary.still_missing == 0
    assert summary.fetched >= PAGES * 1000 - 1000
    assert Tick.objects.filter(exchange="binance", symbol="BTCUSDT").count() == summary.expected
    injected = status["faults_injected"]
    assert "weight_429" not in injected, injected
    assert not {"backoff_violation", "ban_418"} & set(injected), injected
    windows = [past[w] for w in sorted(past)]
    full = windows[1:-1]
    print(f"\nweight per {WINDOW_S} s window (limit {LIMIT}): {windows}")
    assert len(full) >= 3, windows
    assert all(used >= 0.9 * LIMIT for used in full), windows
    assert all(used <= LIMIT for used in windows), windows


def test_a_client_that_does_not_know_the_limit_learns_it_from_the_first_429() -> None:
    """Without exchangeInfo the budget assumes Binance's 6,000 a minute; a simulator allowing 40 per 4 s answers
    one 429, whose message states the limit: the client waits its Retry-After and paces itself from then on."""
    with running_in_thread(sim_config(weight_limit=40, weight_window_s=WINDOW_S)) as sim:
        adapter = BinanceRest(sim.url)
        for _ in range(25):  # 100 weight: two and a half windows
            adapter.latest_trades("BTCUSDT")
        assert (adapter.budget.limit, adapter.budget.window) == (40, WINDOW_S)
        adapter.close()
        status = requests.get(f"{sim.url}/_sim/status", timeout=5).json()
    assert status["faults_injected"].get("weight_429") == 1
    assert not {"backoff_violation", "ban_418"} & set(status["faults_injected"])
