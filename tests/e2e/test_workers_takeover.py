"""Stream workers sharing a 200-symbol universe end to end: three ``manage.py stream --exchange binance`` processes
(no ``--symbols``: leased workers) against the simulator, with leases of 4 s renewed every second.

- They partition the 200 stored instruments (every one held by exactly one live worker, shares 67/67/66) and
  stream each on one socket apiece: the quiet and silent symbols cause no reconnect (the simulator counts 3
  connections, and no more after the takeover).
- One is killed with SIGKILL: its instruments are held again by the survivors within 20 s (the time is printed),
  and streamed by them, resumed by id from the last stored trade.
- The market paused: every symbol's stored trades equal ``/_sim/truth`` over its streamed span (0 missing, 0
  doubled, over all 200) and end at the exchange's last trade (a symbol taken over is resumed by id from its last
  stored trade, quiet or not). And no record starts after the moment all were subscribed: a worker that takes a
  symbol never stored, unheard on its socket, stores the exchange's latest trade (a resume point), so a quiet symbol
  whose holder is killed before writing its first live trades is resumed from there by its next holder.

A second test: a worker joining two others takes its fair share (a third of the instruments) within a minute; stopped
cleanly (SIGTERM), it gives its leases back and the others hold them again within about a round and its stop.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection

from exchangesim.server import Simulator, running_in_thread
from markets.leases import LEASES, WORKERS
from markets.models import Gap, Instrument, Tick
from tests.conftest import sim_config, wait_for
from tests.e2e.conftest import manage_env
from tests.e2e.test_multivenue_recovery import stored, truth
from tests.markets.stream.test_connection import opened
from tradingsite.devstack import Service

ROOT = Path(__file__).resolve().parents[2]
LISTED = ("BTCUSDT", "ETHUSDT")
SIZE = 200
LEASE, RENEW = 4, 1
TAKEOVER_LIMIT = 20.0


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """Binance with BTCUSDT, ETHUSDT and a universe of 198 more: 200 symbols trading 2,000 trades/s in all (a few
    busy, most quiet, some silent for minutes). No REST weight limit: the test is about the leases."""
    config = sim_config(rate=2000.0, symbols=LISTED, universe=SIZE - len(LISTED), weight_limit=10_000_000)
    with running_in_thread(config) as s:
        yield s


@pytest.fixture
def universe(sim: Simulator, db: None) -> tuple[str, ...]:
    """The simulator's 200 Binance symbols, stored as streamed instruments; no lease left by another test."""
    info = requests.get(f"{sim.url}/api/v3/exchangeInfo", timeout=30).json()
    listed = {s["symbol"]: (s["baseAsset"], s["quoteAsset"]) for s in info["symbols"]}
    symbols = tuple(sorted(listed))
    assert len(symbols) == SIZE
    Instrument.objects.bulk_create(
        Instrument(exchange="binance", symbol=s, canonical=f"{base}-{quote}", base=base, quote=quote)
        for s, (base, quote) in listed.items()
    )
    for name in (LEASES, WORKERS):
        connection.database.drop_collection(name)
    return symbols


def start_worker(sim: Simulator, dev_stack: dict[str, Service], log: Path, **extra: str) -> subprocess.Popen[str]:
    """``manage.py stream --exchange binance`` (a leased worker), trading off unless ``extra`` says otherwise."""
    leased = {"STREAM_LEASE_SECONDS": str(LEASE), "STREAM_LEASE_RENEW_SECONDS": str(RENEW), "TRADING_ENABLED": "0"}
    env = manage_env(sim, dev_stack, **leased | {"PYTHONUNBUFFERED": "1"} | extra)
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "stream",
            "--exchange",
            "binance",
            "--stall-seconds",
            "10",
            "--metrics-port",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def holders() -> dict[str, str]:
    """symbol -> the worker holding its live lease (by the database's clock)."""
    docs = connection.database[LEASES].aggregate(
        [
            {"$match": {"group": "binance", "owner": {"$ne": None}, "$expr": {"$gt": ["$expires", "$$NOW"]}}},
            {"$project": {"key": 1, "owner": 1}},
        ]
    )
    return {d["key"]: d["owner"] for d in docs}


def worker_of(pid: int) -> str:
    doc = connection.database[WORKERS].find_one({"group": "binance", "pid": pid})
    assert doc is not None, f"no heartbeat from worker pid {pid}"
    return str(doc["worker"])


def subscribed(sim: Simulator) -> set[str]:
    status = requests.get(f"{sim.url}/_sim/status", timeout=10).json()
    return {s.split("@")[0].upper() for s in status["venues"]["binance"]["subscriptions"]}


def last_ids(sim: Simulator, symbols: tuple[str, ...]) -> dict[str, int]:
    """Each symbol's last aggregate trade id on the exchange (-1: none yet)."""
    out = {}
    with requests.Session() as http:
        for s in symbols:
            resp = http.get(f"{sim.url}/api/v3/aggTrades", params={"symbol": s, "limit": 1}, timeout=10)
            resp.raise_for_status()
            rows = resp.json()
            out[s] = int(rows[-1]["a"]) if rows else -1
    return out


def stored_last() -> dict[str, int]:
    """Each symbol's last stored trade id."""
    docs = connection.database[Tick._meta.db_table].aggregate(
        [{"$match": {"exchange": "binance"}}, {"$group": {"_id": "$symbol", "last": {"$max": "$trade_id"}}}]
    )
    return {d["_id"]: int(d["last"]) for d in docs}


def ticks() -> int:
    return connection.database[Tick._meta.db_table].estimated_document_count()


def more_trades(n: int, proc: subprocess.Popen[str], log: Path) -> None:
    """The market runs on until ``n`` more trades are stored."""
    before = ticks()
    wait_for(f"{n} more trades stored", lambda: ticks() >= before + n, 60, proc, log)


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_three_workers_share_200_symbols_and_a_killed_ones_are_taken_over_with_nothing_lost(
    sim: Simulator, universe: tuple[str, ...], dev_stack: dict[str, Service], tmp_path: Path
) -> None:
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    procs = [start_worker(sim, dev_stack, log) for log in logs]
    try:
        wait_for(
            "the 200 instruments partitioned among the 3 workers",
            lambda: len(holders()) == SIZE and len(set(holders().values())) == 3,
            90,
            procs[0],
            logs[0],
        )
        wait_for("the shares to settle at 67/67/66", lambda: _shares() == [66, 67, 67], 30, procs[0], logs[0])
        wait_for("all 200 subscribed", lambda: subscribed(sim) == set(universe), 30, procs[0], logs[0])
        # the last moves of the start-up settle on the sockets (a symbol given back is unsubscribed by its old
        # holder and subscribed by its new one: one never stored starts at its first live trade there)
        more_trades(5_000, procs[0], logs[0])
        baseline = last_ids(sim, universe)  # from here on every trade must be stored
        sockets = opened(sim, "binance")
        print(f"\n3 workers: shares {_shares()}, {sockets} connections to the simulator")
        more_trades(10_000, procs[0], logs[0])  # the market runs a while before the kill

        victim = procs[2]
        dead = worker_of(victim.pid)
        theirs = {s for s, w in holders().items() if w == dead}
        killed = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        survivors = {worker_of(p.pid) for p in procs[:2]}
        wait_for(
            "the killed worker's instruments held by the survivors",
            lambda: all(holders().get(s) in survivors for s in theirs),
            TAKEOVER_LIMIT + 10,
            procs[0],
            logs[0],
            every=0.1,
        )
        took = time.monotonic() - killed
        wait_for("all 200 subscribed again", lambda: subscribed(sim) == set(universe), 20, procs[0], logs[0])
        streamed = time.monotonic() - killed
        print(
            f"SIGKILL of a worker holding {len(theirs)} instruments: held by the survivors {took:.2f} s later, "
            f"all streamed again {streamed:.2f} s later (leases of {LEASE} s, rounds every {RENEW} s); shares "
            f"{_shares()}"
        )
        more_trades(10_000, procs[0], logs[0])  # the survivors stream the taken-over symbols a while

        paused_ms = int(time.time() * 1000)
        requests.post(f"{sim.url}/_sim/market", json={"paused": True}, timeout=10).raise_for_status()
        final = last_ids(sim, universe)
        behind: list[tuple[str, int, int, int]] = []

        def settled() -> bool:
            last = stored_last()
            behind[:] = [(s, last[s], final[s], baseline[s]) for s in universe if s in last and last[s] < final[s]]
            return not behind  # every symbol with a record is caught up (one with none is reported below)

        try:
            wait_for("every trade before the pause stored", settled, 30, procs[0], logs[0], every=0.5)
        except BaseException:
            for s, last, fin, base in behind:
                if fin > base:
                    rows = truth(sim, "binance", s, max(last, base) + 1, fin)
                    print(
                        f"{s}: stored last {last}, exchange last {fin}, baseline {base}; not stored: {rows}, the "
                        f"pause at {paused_ms}, held by {holders().get(s, '-')[-12:]}"
                    )
            raise
        connections = opened(sim, "binance")
    finally:
        stop(procs)
    for p, log in zip(procs[:2], logs[:2], strict=True):
        assert p.returncode == 0, log.read_text()[-4000:]
    total, traded, missing, doubled = 0, 0, 0, 0
    late: list[tuple[str, int, int | None, int]] = []
    for s in universe:
        rows = stored("binance", s)
        if final[s] > baseline[s]:
            traded += 1
            if not rows or rows[0][0] > baseline[s] + 1:  # trades after all were subscribed, lost before the record
                late.append((s, baseline[s], rows[0][0] if rows else None, final[s]))
        if not rows:
            continue
        ids = [r[0] for r in rows]
        missing += ids[-1] - ids[0] + 1 - len(set(ids))
        doubled += len(ids) - len(set(ids))
        holes = sorted(set(range(ids[0], ids[-1] + 1)) - set(ids))
        assert ids == list(range(ids[0], ids[-1] + 1)), (
            f"{s}: a missing or doubled trade id: {len(holes)} missing {holes[:5]}..{holes[-5:]}, stored {ids[0]}.."
            f"{ids[-1]}, baseline {baseline[s]}; its gaps: {gaps_of(s)}; the logs say: {said_of(s, logs)}"
        )
        assert ids[-1] == final[s], f"{s}: stored up to {ids[-1]}, the exchange's last is {final[s]}"  # caught up
        assert rows == truth(sim, "binance", s, ids[0], ids[-1]), f"{s} differs from the truth"
        total += len(ids)
    print(
        f"after the pause: {total} trades stored over {SIZE} symbols ({traded} traded since all were subscribed, "
        f"the others quiet or silent), all equal to /_sim/truth: {missing} missing, {doubled} doubled; "
        f"{connections} connections opened in all; symbols whose record starts after the moment all were "
        f"subscribed (symbol, exchange's last id then, first stored, last): {late}"
    )
    assert took < TAKEOVER_LIMIT
    assert (missing, doubled) == (0, 0)
    assert late == [], "trades after all were subscribed that are not stored: the record starts after them"
    assert connections == sockets == 3, "quiet symbols (and the takeover) cost no reconnect: one socket a worker"


def gaps_of(symbol: str) -> list[tuple[int, int, str, int]]:
    """The recorded gaps of ``symbol``: (first id, last id, state, recovered)."""
    return list(Gap.objects.filter(symbol=symbol).values_list("start", "end", "state", "recovered"))


def said_of(symbol: str, logs: list[Path]) -> list[str]:
    """The workers' log lines naming ``symbol`` (the worker's number first)."""
    return [
        f"{i}: {line[:200]}" for i, log in enumerate(logs) for line in log.read_text().splitlines() if symbol in line
    ]


def _shares() -> list[int]:
    counts: dict[str, int] = {}
    for w in holders().values():
        counts[w] = counts.get(w, 0) + 1
    return sorted(counts.values())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_joining_two_takes_its_fair_share_within_a_minute(
    sim: Simulator, universe: tuple[str, ...], dev_stack: dict[str, Service], tmp_path: Path
) -> None:
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    procs = [start_worker(sim, dev_stack, log) for log in logs[:2]]
    try:
        wait_for("two workers sharing 100/100", lambda: _shares() == [100, 100], 90, procs[0], logs[0])
        joined = time.monotonic()
        procs.append(start_worker(sim, dev_stack, logs[2]))
        wait_for("the newcomer's share", lambda: _shares() == [66, 67, 67], 60, procs[2], logs[2])
        took = time.monotonic() - joined
        wait_for("all 200 subscribed", lambda: subscribed(sim) == set(universe), 20, procs[2], logs[2])
        print(f"\na third worker took its share ({_shares()}) {took:.2f} s after it was started")
        newcomer: Any = worker_of(procs[2].pid)
        theirs = {s for s, w in holders().items() if w == newcomer}
        assert len(theirs) in (66, 67)
        others = {worker_of(p.pid) for p in procs[:2]}
        stopped = time.monotonic()
        procs[2].send_signal(signal.SIGTERM)  # a clean stop gives its leases back: taken at the others' next round
        wait_for(
            "the stopped worker's instruments held by the others",
            lambda: all(holders().get(s) in others for s in theirs),
            LEASE + 10,
            procs[0],
            logs[0],
            every=0.1,
        )
        handed = time.monotonic() - stopped
        procs[2].wait(30)
        print(f"SIGTERM of the third: its {len(theirs)} instruments held by the others {handed:.2f} s later")
        assert "leases given back" in logs[2].read_text()
    finally:
        stop(procs)
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log.read_text()[-4000:]
    assert took < 60
