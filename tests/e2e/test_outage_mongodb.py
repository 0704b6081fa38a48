"""MongoDB outages, end to end: ``manage.py stream`` against the simulator and a mongod of the test's own, which the
test stops (SIGKILL, SIGTERM) or hangs (SIGSTOP) and brings back on the same port and data folder.

Each test ends with the stored trades compared with the simulator's truth (0 missing, 0 doubled), the stored 1m
candles compared with candles computed from the truth, the stream process alive until it is stopped, a decision
stored for every closed candle from the first one on (those of the outage's minutes included, decided late and in
order) and for a candle that closed after the database returned, and a clean stop that prints its summary. Each
prints: fault, trades compared, missing, doubled, time to recover (from the database's return until every trade
the simulator had printed by then is stored).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection
from pymongo import MongoClient
from pymongo.database import Database

from exchangesim.server import Simulator, running_in_thread
from markets.models import Candle, Gap, Tick
from signals.models import Signal
from tests.conftest import sim_config, wait_for
from tests.e2e.test_stream_recovery import (
    SYMBOL,
    assert_candles_equal_truth,
    assert_equal_to_truth,
    start_stream,
    stop,
    stored,
    truth,
)
from tradingsite.devstack import Service, free_port, start_mongod

RATE = 20.0  # trades/s: modest, so that every wait below is met well within its time
COPIED = (Tick, Candle, Gap, Signal)  # what the checks read, copied from the test's mongod into the test database


@dataclass
class OwnMongo:
    """A mongod the test may stop and start again on the same port and data folder."""

    root: Path
    port: int
    service: Service
    name: str  # the database the stream writes (the test database's name)

    @property
    def uri(self) -> str:
        return self.service.uri

    def db(self) -> Database[Any]:
        client: MongoClient[Any] = MongoClient(self.uri, serverSelectionTimeoutMS=60_000)
        return client[self.name]

    def kill(self, sig: signal.Signals) -> None:
        os.kill(self.service.process.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self.service.process.wait(60)

    def start(self) -> None:
        self.service = start_mongod(self.root, port=self.port)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with running_in_thread(sim_config(rate=RATE)) as s:
        yield s


@pytest.fixture
def own_mongo(tmp_path: Path) -> Iterator[OwnMongo]:
    """A mongod of this test's own, with the test database's collections and indexes (copied, not migrated)."""
    port = free_port()
    mongo = OwnMongo(
        tmp_path / "mongo", port, start_mongod(tmp_path / "mongo", port=port), connection.settings_dict["NAME"]
    )
    source, target = connection.database, mongo.db()
    for info in source.list_collections():
        coll = target.create_collection(info["name"], **info.get("options", {}))
        for index in source[info["name"]].list_indexes():
            if index["name"] != "_id_":
                spec = {k: v for k, v in index.items() if k not in ("v", "key", "ns")}
                coll.create_index(list(index["key"].items()), **spec)
    try:
        yield mongo
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(mongo.service.process.pid, signal.SIGCONT)  # a hung one cannot be stopped
        mongo.service.stop()


def ticks_in(db: Database[Any]) -> int:
    return db[Tick._meta.db_table].count_documents({"symbol": SYMBOL})


def last_printed(sim: Simulator) -> int:
    """The id of the simulator's latest aggregate trade of the symbol."""
    status = requests.get(f"{sim.url}/_sim/status", timeout=5).json()
    return int(status["symbols"][SYMBOL]["last_agg_id"])


def all_stored_up_to(db: Database[Any], first: int, last: int) -> bool:
    query = {"symbol": SYMBOL, "trade_id": {"$gte": first, "$lte": last}}
    return db[Tick._meta.db_table].count_documents(query) == last - first + 1


def decided_since(db: Database[Any], minute: datetime) -> bool:
    query = {"symbol": SYMBOL, "interval": "1m", "candle_open_time": {"$gte": minute}}
    return db[Signal._meta.db_table].count_documents(query) > 0


def copy_into_test_database(mongo: OwnMongo) -> None:
    """What the stream stored, into the test database the shared checks read (emptied after the test)."""
    source = mongo.db()
    for model in COPIED:
        docs = list(source[model._meta.db_table].find())
        if docs:
            connection.database[model._meta.db_table].insert_many(docs)


def streaming(sim: Simulator, mongo: OwnMongo, redis: Service, *extra: str) -> subprocess.Popen[str]:
    """``manage.py stream`` on the test's mongod, once it stores trades and candles."""
    proc = start_stream(sim, {"mongo": mongo.service, "redis": redis}, "--stall-seconds", "3", *extra)
    db = mongo.db()
    wait_for("live ticks", lambda: ticks_in(db) > 5 * RATE, 60, proc)
    wait_for("a 1m candle", lambda: db[Candle._meta.db_table].count_documents({"symbol": SYMBOL}) > 0, 30, proc)
    return proc


def recovered(
    fault: str, sim: Simulator, mongo: OwnMongo, proc: subprocess.Popen[str], back: float, returned: datetime
) -> float:
    """Wait until every trade printed by the database's return (``back``, monotonic) is stored, then for a decision
    on a candle that closed after it; the seconds from the return until all were stored."""
    target = last_printed(sim)
    db = mongo.db()
    first = int(db[Tick._meta.db_table].find_one({"symbol": SYMBOL}, sort=[("trade_id", 1)])["trade_id"])
    wait_for(f"the trades up to {target} ({fault})", lambda: all_stored_up_to(db, first, target), 120, proc, every=0.1)
    seconds = time.monotonic() - back
    minute = returned.replace(second=0, microsecond=0)
    wait_for("a decision on a candle closed after the outage", lambda: decided_since(db, minute), 150, proc)
    assert proc.poll() is None, "the stream process ended"
    return seconds


def check(fault: str, sim: Simulator, mongo: OwnMongo, out: str, seconds: float) -> None:
    """The stored trades, candles and decisions against the truth; prints the row of the fault."""
    assert "Traceback" not in out, out
    assert "live trades written in all" in out, out
    copy_into_test_database(mongo)
    docs = stored()
    ids = [int(d["trade_id"]) for d in docs]
    expected = [int(e["a"]) for e in truth(sim, ids[0], ids[-1])]
    missing, doubled = len(set(expected) - set(ids)), len(ids) - len(set(ids))
    print(
        f"\n| fault | trades compared | missing | doubled | time to recover |\n"
        f"| {fault} | {len(expected)} | {missing} | {doubled} | {seconds:.1f} s |"
    )
    assert (missing, doubled) == (0, 0)
    assert_equal_to_truth(sim, docs)
    compared = assert_candles_equal_truth(sim, docs)
    decided = sorted(Signal.objects.filter(symbol=SYMBOL, interval="1m").values_list("candle_open_time", flat=True))
    span = int((decided[-1] - decided[0]).total_seconds() // 60) + 1
    print(f"{fault}: {compared} 1m candles equal the truth; {len(decided)} candles decided in a row")
    assert len(decided) == span == len(set(decided)), "a closed candle without its decision"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_mongodb_killed_for_30_s(sim: Simulator, own_mongo: OwnMongo, dev_stack: dict[str, Service]) -> None:
    """mongod killed (SIGKILL) for 30 s while trades flow: the stream keeps them, writes them all when it returns,
    and its candles and signals go on as if nothing had happened."""
    proc = streaming(sim, own_mongo, dev_stack["redis"])
    try:
        own_mongo.kill(signal.SIGKILL)
        time.sleep(30)  # the outage itself
        own_mongo.start()
        back, returned = time.monotonic(), datetime.now(UTC)
        seconds = recovered("mongod killed 30 s", sim, own_mongo, proc, back, returned)
    finally:
        out = stop(proc)
    assert "the database failed storing trades" in out
    assert "the database answers again" in out
    check("mongod killed (SIGKILL) 30 s", sim, own_mongo, out, seconds)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_mongodb_stopped_for_180_s(sim: Simulator, own_mongo: OwnMongo, dev_stack: dict[str, Service]) -> None:
    """mongod stopped (SIGTERM) for three minutes: the outage spans closed minutes, whose candles and decisions are
    written late, in order; nothing is lost and the process never exits."""
    proc = streaming(sim, own_mongo, dev_stack["redis"])
    try:
        own_mongo.kill(signal.SIGTERM)
        time.sleep(180)  # the outage itself
        assert proc.poll() is None, "the stream exited during the outage"
        own_mongo.start()
        back, returned = time.monotonic(), datetime.now(UTC)
        seconds = recovered("mongod stopped 180 s", sim, own_mongo, proc, back, returned)
    finally:
        out = stop(proc)
    assert "the database is still down" in out
    check("mongod stopped (SIGTERM) 180 s", sim, own_mongo, out, seconds)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_mongodb_hung_for_60_s_while_the_socket_drops(
    sim: Simulator, own_mongo: OwnMongo, dev_stack: dict[str, Service]
) -> None:
    """mongod hung (SIGSTOP) for 60 s, and the exchange drops the socket 10 s into it for 3 s: the socket is back
    within seconds of the drop, not when the database answers; the hole is filled by id once it does."""
    proc = streaming(sim, own_mongo, dev_stack["redis"])
    status = f"{sim.url}/_sim/status"
    try:
        own_mongo.kill(signal.SIGSTOP)
        hung = time.monotonic()
        time.sleep(10)  # the database hangs first
        requests.post(f"{sim.url}/_sim/ws/drop", json={"mode": "close", "seconds": 3}, timeout=5).raise_for_status()
        dropped = time.monotonic()
        wait_for(
            "the socket to close",
            lambda: requests.get(status, timeout=5).json()["venues"]["binance"]["open_sockets"] == 0,
            10,
            proc,
            every=0.05,
        )
        wait_for(
            "the socket to come back",
            lambda: requests.get(status, timeout=5).json()["venues"]["binance"]["subscriptions"] != [],
            20,
            proc,
            every=0.1,
        )
        socket_back = time.monotonic() - dropped
        assert time.monotonic() - hung < 60, "the socket came back only after the database"
        print(f"\nthe socket was back {socket_back:.1f} s after the drop, with the database hung")
        assert socket_back < 15
        time.sleep(max(0.0, 60 - (time.monotonic() - hung)))  # the rest of the hang
        own_mongo.kill(signal.SIGCONT)
        back, returned = time.monotonic(), datetime.now(UTC)
        seconds = recovered("mongod hung 60 s + drop", sim, own_mongo, proc, back, returned)
        db = own_mongo.db()
        wait_for(
            "the gap to be filled",
            lambda: db[Gap._meta.db_table].count_documents({"symbol": SYMBOL, "state": "filled"}) > 0,
            60,
            proc,
        )
    finally:
        out = stop(proc)
    check("mongod hung (SIGSTOP) 60 s + socket drop", sim, own_mongo, out, seconds)
    gap = Gap.objects.get(symbol=SYMBOL, kind="trades")
    assert gap.recovered == gap.end - gap.start + 1 == gap.missing
