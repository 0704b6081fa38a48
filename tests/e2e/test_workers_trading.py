"""Trading runs on exactly one leased stream worker, end to end: two ``manage.py stream --exchange binance`` workers
(paper trading, no API keys) over 10 instruments with ``TRADING_SYMBOLS=BTCUSDT``. One holds the trading lease and
streams BTCUSDT itself besides its share of the other nine; the other does not trade and does not stream BTCUSDT.
Killed (SIGKILL), its trading lease and BTCUSDT pass to the survivor within the lease and a round."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.db import connection

from exchangesim.server import Simulator, running_in_thread
from markets.leases import LEASES, WORKERS
from markets.models import Instrument
from tests.conftest import sim_config, wait_for
from tests.e2e.test_workers_takeover import LEASE, holders, start_worker, stop, subscribed, worker_of
from tradingsite.devstack import Service

TRADING = "singleton:trading:binance"


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """BTCUSDT, ETHUSDT and 8 universe symbols, 300 trades/s in all."""
    with running_in_thread(sim_config(rate=300.0, symbols=("BTCUSDT", "ETHUSDT"), universe=8)) as s:
        yield s


def trader() -> str | None:
    """The worker holding the live trading lease of binance, by the database's clock."""
    docs = list(
        connection.database[LEASES].find({"_id": TRADING, "$expr": {"$gt": ["$expires", "$$NOW"]}}, {"owner": 1})
    )
    return docs[0]["owner"] if docs else None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_worker_trades_and_streams_the_traded_symbol_and_hands_both_over_when_killed(
    sim: Simulator, dev_stack: dict[str, Service], tmp_path: Path
) -> None:
    info = requests.get(f"{sim.url}/api/v3/exchangeInfo", timeout=30).json()
    for s in info["symbols"]:
        base, quote = s["baseAsset"], s["quoteAsset"]
        Instrument.objects.create(
            exchange="binance", symbol=s["symbol"], canonical=f"{base}-{quote}", base=base, quote=quote
        )
    for name in (LEASES, WORKERS):
        connection.database.drop_collection(name)
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    env = {"TRADING_ENABLED": "1", "TRADING_SYMBOLS": "BTCUSDT", "BINANCE_API_KEY": "", "BINANCE_API_SECRET": ""}
    procs = [start_worker(sim, dev_stack, log, **env) for log in logs]
    try:
        wait_for(
            "a trading worker and the nine shared",
            lambda: trader() is not None and len(holders()) == 9,
            60,
            procs[0],
            logs[0],
        )
        wait_for("all 10 subscribed", lambda: len(subscribed(sim)) == 10, 30, procs[0], logs[0])
        both = {"group": "binance", "pid": {"$in": [p.pid for p in procs]}}
        wait_for(
            "both workers' heartbeats",
            lambda: connection.database[WORKERS].count_documents(both) == 2,
            10,
            procs[0],
            logs[0],
        )
        ids = {worker_of(p.pid): p for p in procs}
        holder = trader()
        assert holder in ids
        assert "BTCUSDT" not in holders()  # kept out of the shared group: streamed by the trading worker
        trading_log = logs[procs.index(ids[holder])]
        wait_for(
            "the trader's log", lambda: "holds the trading lease" in trading_log.read_text(), 10, procs[0], logs[0]
        )
        other = next(log for log in logs if log != trading_log)
        assert "holds the trading lease" not in other.read_text()
        killed = time.monotonic()
        ids[holder].send_signal(signal.SIGKILL)
        ids[holder].wait(10)
        survivor = next(w for w in ids if w != holder)
        alive = ids[survivor]
        wait_for("the trading lease taken over", lambda: trader() == survivor, LEASE + 10, alive, other, every=0.1)
        took = time.monotonic() - killed
        wait_for("BTCUSDT streamed again", lambda: "BTCUSDT" in subscribed(sim), 10, alive, other)
        wait_for(
            "the survivor says it trades", lambda: "holds the trading lease" in other.read_text(), 10, alive, other
        )
        print(
            f"\nthe trading worker killed: the survivor holds the trading lease {took:.2f} s later and streams BTCUSDT"
        )
    finally:
        stop(procs)
