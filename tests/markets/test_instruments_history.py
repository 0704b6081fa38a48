"""``instruments add --since``: the added instrument's history is queued for the Celery worker (and the command says
whether a worker is there to run it, or that the broker could not be reached); the task stores every trade from then
on, exactly as the exchange (the simulator) has them, and the 1m candles built from them."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import redis
import requests
from django.core.management import CommandError, call_command

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.documents import to_ms
from markets.models import Candle, Gap, Instrument, Tick
from markets.services import CANDLE_GRACE
from markets.store import collection
from markets.tasks import backfill_history
from tests.conftest import sim_config
from tests.markets.test_tasks import broker, queued  # noqa: F401 (broker is a fixture)
from tradingsite.celery import app
from tradingsite.devstack import free_port

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)


@pytest.fixture
def market(settings: Any) -> Iterator[Simulator]:
    """The simulator as Binance, listing XRPUSDT and DOGEUSDT at 2 trades/s each with an hour of history; no tick,
    candle or gap stored before or after (raw writes are not rolled back with the test's transaction)."""
    for model in (Tick, Candle, Gap):
        collection(model).delete_many({})
    config = sim_config(symbols=("XRPUSDT", "DOGEUSDT"), explicit_symbols=True, rate=2.0, history_days=0.05)
    with running_in_thread(config) as sim:
        settings.BINANCE_REST_URL = sim.url
        yield sim
    for model in (Tick, Candle, Gap):
        collection(model).delete_many({})


@pytest.fixture
def dead_broker() -> Iterator[str]:
    """This process's Celery app sends to a broker that is not there."""
    before = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    app._after_fork()  # drops the connection pool made for the configured broker
    try:
        yield app.conf.broker_url
    finally:
        app.conf.broker_url = before
        app._after_fork()


def add(*args: str) -> str:
    out = io.StringIO()
    call_command("instruments", "add", "binance", *args, "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.usefixtures("market")
def test_since_queues_the_history_and_says_no_worker_runs_it(broker: redis.Redis) -> None:  # noqa: F811
    before = datetime.now(UTC)
    out = add("XRPUSDT,DOGEUSDT", "--since", "2h")
    after = datetime.now(UTC)
    added, history = out.strip().splitlines()
    assert added == "binance: 2 added (XRPUSDT, DOGEUSDT)"
    assert history.startswith("binance: history from ")
    assert history.endswith(
        "queued for XRPUSDT, DOGEUSDT, but no Celery worker answered within a second: the backfill waits in the "
        "queue until one runs (celery -A tradingsite worker, or make run)"
    )
    sent = queued(broker)
    assert [(name, args[:2]) for name, args in sent] == [
        ("markets.tasks.backfill_history", ["binance", "XRPUSDT"]),
        ("markets.tasks.backfill_history", ["binance", "DOGEUSDT"]),
    ]
    assert sent[0][1][2] == sent[1][1][2]
    assert to_ms(before - timedelta(hours=2)) <= sent[0][1][2] <= to_ms(after - timedelta(hours=2))


@pytest.mark.usefixtures("market")
def test_since_takes_an_iso_time(broker: redis.Redis) -> None:  # noqa: F811
    since = iv.floor(datetime.now(UTC), "1m") - 30 * MINUTE
    add("XRPUSDT", "--since", since.isoformat())
    assert queued(broker) == [("markets.tasks.backfill_history", ["binance", "XRPUSDT", to_ms(since)])]


@pytest.mark.usefixtures("market", "dead_broker")
def test_a_broker_that_cannot_be_reached_is_said_and_the_instrument_still_added() -> None:
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^history not queued: the Celery broker .* \(added: XRPUSDT\)$"):
        call_command("instruments", "add", "binance", "XRPUSDT", "--since", "1h", "--no-progress", stdout=out)
    assert "NOT queued" in out.getvalue()
    assert "their record starts at their first live trade" in out.getvalue()
    assert Instrument.objects.filter(symbol="XRPUSDT", streamed=True).exists()


def truth(sim: Simulator, symbol: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"symbol": symbol, "kind": "aggTrades", "start_ms": start_ms, "end_ms": end_ms}
    resp = requests.get(f"{sim.url}/_sim/truth", timeout=60, params=params)
    resp.raise_for_status()
    return [json.loads(line) for line in resp.text.splitlines() if line]


def test_the_task_stores_every_trade_from_since_and_their_candles(market: Simulator) -> None:
    """From the start of the minute of ``since`` to when the task runs: the stored ids are the exchange's, none
    missing or doubled, and each whole minute's candle is the one its trades make, closed once the minute and its
    grace are over."""
    ran = datetime.now(UTC)
    since = ran - 10 * MINUTE
    result = backfill_history.apply(args=("binance", "XRPUSDT", to_ms(since))).get()
    coll = collection(Tick)
    stored = [(int(d["trade_id"]), d["ts"]) for d in coll.find({"symbol": "XRPUSDT"}).sort("trade_id", 1)]
    assert stored, "the simulator trades twice a second"
    start, last = iv.floor(since, "1m"), stored[-1][1].replace(tzinfo=UTC)
    trades = truth(market, "XRPUSDT", to_ms(start), to_ms(last))
    assert [i for i, _ in stored] == [e["a"] for e in trades]
    assert result["trades"] == len(stored)
    assert not coll.count_documents({"symbol": "DOGEUSDT"})
    minutes: dict[datetime, list[dict[str, Any]]] = {}
    for e in trades:
        minutes.setdefault(iv.floor(datetime.fromtimestamp(e["T"] / 1000, UTC), "1m"), []).append(e)
    candles = {c.open_time: c for c in Candle.objects.filter(symbol="XRPUSDT", interval="1m")}
    for minute, its in minutes.items():
        if minute >= iv.floor(last, "1m"):
            continue  # the minute still trading when the task ran
        c = candles[minute]
        prices = [Decimal(e["p"]) for e in its]
        assert c.closed or minute + MINUTE + CANDLE_GRACE > ran, f"the candle of {minute} is not closed"
        assert (c.open, c.high, c.low, c.close, c.volume) == (
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
            sum(Decimal(e["q"]) for e in its),
        ), f"the candle of {minute} is not the one its trades make"
