"""``manage.py backfill`` against the simulator: every trade id once, nothing refetched, 429s waited out."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import connection

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.models import Candle, Tick
from tests.conftest import sim_config


@pytest.fixture
def slow_sim(settings: Any) -> Iterator[Simulator]:
    """A simulator at 10 trades/s with a day of history, as the configured Binance."""
    with running_in_thread(sim_config(rate=10.0)) as sim:
        settings.BINANCE_REST_URL = sim.url
        yield sim


def truth_agg_ids(sim: Simulator, symbol: str, start: datetime, end: datetime) -> list[int]:
    """The simulator's own aggregate-trade ids with time in [start, end)."""
    resp = requests.get(
        f"{sim.url}/_sim/truth",
        timeout=60,
        params={
            "symbol": symbol,
            "kind": "aggTrades",
            "start_ms": int(start.timestamp() * 1000),
            "end_ms": int(end.timestamp() * 1000) - 1,
        },
    )
    resp.raise_for_status()
    return [json.loads(line)["a"] for line in resp.text.splitlines() if line]


def stored_ids(symbol: str) -> list[int]:
    coll = connection.database[Tick._meta.db_table]
    return [int(d["trade_id"]) for d in coll.find({"symbol": symbol}, {"trade_id": 1}).sort("trade_id", 1)]


def backfill(*args: str) -> str:
    out = io.StringIO()
    call_command("backfill", *args, "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def summary_figures(text: str) -> dict[str, int]:
    """The summary's labelled numbers, e.g. {"fetched": 1234, "newly stored": 1234, ...}."""
    figures = {}
    for line in text.splitlines()[1:]:
        label, _, rest = line.strip().partition("  ")
        figures[label.strip()] = int(rest.split()[0].replace(",", ""))
    return figures


@pytest.mark.slow
@pytest.mark.django_db
def test_six_hours_of_trades_every_id_once_and_a_rerun_fetches_nothing(slow_sim: Simulator) -> None:
    """Six hours of aggregate trades: each id of the simulator's tape in the range is stored exactly once;
    running the same backfill again fetches nothing and stores nothing."""
    end = iv.floor(datetime.now(UTC), "1m") - timedelta(minutes=5)
    start = end - timedelta(hours=6)
    args = ("--what", "trades", "--symbol", "BTCUSDT", "--start", start.isoformat(), "--end", end.isoformat())
    first = summary_figures(backfill(*args))
    truth = truth_agg_ids(slow_sim, "BTCUSDT", start, end)
    assert len(truth) > 50_000
    assert stored_ids("BTCUSDT") == truth
    assert first["in range"] == len(truth)
    assert first["newly stored"] == len(truth)
    assert first["still missing"] == 0

    again = summary_figures(backfill(*args))
    assert again["fetched"] == 0
    assert again["newly stored"] == 0
    assert again["already present"] == len(truth)
    assert stored_ids("BTCUSDT") == truth


@pytest.mark.django_db
def test_a_hole_in_stored_trades_is_all_that_is_fetched(slow_sim: Simulator) -> None:
    """After deleting a run of stored trades, the backfill fetches exactly those ids back."""
    end = iv.floor(datetime.now(UTC), "1m") - timedelta(minutes=5)
    start = end - timedelta(minutes=30)
    args = ("--what", "trades", "--symbol", "ETHUSDT", "--start", start.isoformat(), "--end", end.isoformat())
    backfill(*args)
    ids = stored_ids("ETHUSDT")
    hole = ids[1000:1700]
    connection.database[Tick._meta.db_table].delete_many(
        {"symbol": "ETHUSDT", "trade_id": {"$gte": hole[0], "$lte": hole[-1]}}
    )
    figures = summary_figures(backfill(*args))
    assert figures["fetched"] == len(hole)
    assert figures["newly stored"] == len(hole)
    assert figures["already present"] == len(ids) - len(hole)
    assert stored_ids("ETHUSDT") == ids


@pytest.mark.django_db
def test_429_with_retry_after_is_waited_out_and_never_becomes_418(slow_sim: Simulator) -> None:
    """With the first requests answered 429 Retry-After: 2, the backfill waits and completes; the simulator
    (which bans clients that ignore Retry-After) never answers 418."""
    requests.post(
        f"{slow_sim.url}/_sim/rest/fault", timeout=5, json={"status": 429, "count": 3, "retry_after": 2}
    ).raise_for_status()
    end = iv.floor(datetime.now(UTC), "1m") - timedelta(minutes=5)
    start = end - timedelta(minutes=20)
    began = datetime.now(UTC)
    figures = summary_figures(
        backfill("--what", "trades", "--symbol", "BTCUSDT", "--start", start.isoformat(), "--end", end.isoformat())
    )
    assert datetime.now(UTC) - began >= timedelta(seconds=6)
    assert figures["still missing"] == 0
    assert stored_ids("BTCUSDT") == truth_agg_ids(slow_sim, "BTCUSDT", start, end)
    status = requests.get(f"{slow_sim.url}/_sim/status", timeout=5).json()
    assert status["faults_injected"].get("rest_429") == 3
    assert not [k for k in status["faults_injected"] if "418" in k]
    venue = {k: v for k, v in status["venues"]["binance"].items() if k != "symbols"}  # not the tapes' trade ids
    assert "418" not in json.dumps(venue)


@pytest.mark.django_db
def test_candles_backfill_stores_every_minute_once(slow_sim: Simulator) -> None:
    """``--what candles`` stores each minute of the range once; a rerun stores nothing new."""
    end = iv.floor(datetime.now(UTC), "1m") - timedelta(minutes=3)
    start = end - timedelta(hours=3)
    args = ("--what", "candles", "--symbol", "BTCUSDT", "--start", start.isoformat(), "--end", end.isoformat())
    first = summary_figures(backfill(*args))
    assert first["in range"] == 180
    assert first["newly stored"] == 180
    assert first["still missing"] == 0
    assert Candle.objects.filter(symbol="BTCUSDT", interval="1m").count() == 180
    again = summary_figures(backfill(*args))
    assert again["fetched"] == 0
    assert again["already present"] == 180


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--symbol", "BTCUSDT", "--start", "yesterday"), "--start"),
        (("--symbol", "BTCUSDT", "--start", "2024-01-02", "--end", "2024-01-01"), "--start must be before --end"),
        (("--symbol", "BTCUSDT", "--start", "1999-01-01"), "--start"),
        (("--symbol", "BTCUSDT", "--start", "0001-01-01T00:00:00+01:00"), "--start"),
    ],
)
def test_bad_arguments_are_clear_errors(args: tuple[str, ...], message: str) -> None:
    """Bad times are refused with a message naming the option, before anything is fetched."""
    with pytest.raises(CommandError, match=message):
        backfill(*args)
