"""Instruments added and removed while ``manage.py stream --exchange binance`` runs (no ``--symbols``: it streams the
stored instruments and follows them), end to end against the simulator. ``manage.py instruments add binance XRPUSDT``
(a symbol the simulator lists) has it streamed within 10 s with no restart, on the open socket (the simulator counts
no new connection); ``manage.py instruments remove binance XRPUSDT`` stops its trades being stored while the others
go on. Once the market is paused, every symbol's stored trades equal the simulator's truth over the span it was
streamed: 0 missing, 0 doubled."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from exchangesim.server import Simulator, running_in_thread
from markets.models import Feed, Gap, Tick
from tests.conftest import sim_config, wait_for
from tests.e2e.conftest import manage_env
from tests.e2e.test_multivenue_recovery import stored, truth
from tests.markets.stream.test_connection import opened
from tradingsite.devstack import Service

ROOT = Path(__file__).resolve().parents[2]
STORED = ("BTCUSDT", "ETHUSDT")
ADDED = "XRPUSDT"
POLL_SECONDS = 2


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """BTCUSDT, ETHUSDT and XRPUSDT listed, 50 synthetic trades/s each."""
    with running_in_thread(sim_config(rate=50.0, symbols=(*STORED, ADDED))) as s:
        yield s


def count(symbol: str) -> int:
    return Tick.objects.filter(exchange="binance", symbol=symbol).count()


def exchange_last_id(sim: Simulator, symbol: str) -> int:
    resp = requests.get(f"{sim.url}/api/v3/aggTrades", params={"symbol": symbol, "limit": 1}, timeout=5)
    resp.raise_for_status()
    return int(resp.json()[-1]["a"])


def environment(sim: Simulator, dev_stack: dict[str, Service]) -> dict[str, str]:
    """A ``manage.py`` process's environment: the session's databases, the simulator as Binance."""
    return manage_env(
        sim,
        dev_stack,
        STREAM_INSTRUMENTS_POLL_SECONDS=str(POLL_SECONDS),
        PYTHONUNBUFFERED="1",  # its stdout lines are read while it runs
    )


def instruments(sim: Simulator, dev_stack: dict[str, Service], *args: str) -> str:
    """``manage.py instruments ARGS`` as an operator runs it; its output (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "manage.py", "instruments", *args],
        cwd=ROOT,
        env=environment(sim, dev_stack),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def start_stream(sim: Simulator, dev_stack: dict[str, Service], log: Path) -> subprocess.Popen[str]:
    """``manage.py stream --exchange binance`` (no ``--symbols``), its output into ``log``."""
    env = environment(sim, dev_stack)
    return subprocess.Popen(
        [sys.executable, "manage.py", "stream", "--exchange", "binance", "--stall-seconds", "3", "--metrics-port", "0"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def assert_equal_to_truth(sim: Simulator, symbol: str) -> int:
    """``symbol``'s stored trades: contiguous ids, each equal to the simulator's record; returns how many."""
    rows = stored("binance", symbol)
    ids = [r[0] for r in rows]
    assert ids == list(range(ids[0], ids[-1] + 1)), f"{symbol}: a missing or doubled trade id"
    assert rows == truth(sim, "binance", symbol, ids[0], ids[-1]), f"{symbol} differs from the truth"
    return len(ids)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_instrument_added_is_streamed_within_10_s_and_one_removed_stops(
    sim: Simulator, dev_stack: dict[str, Service], tmp_path: Path
) -> None:
    instruments(sim, dev_stack, "add", "binance", ",".join(STORED), "--no-progress")
    log = tmp_path / "stream.log"
    proc = start_stream(sim, dev_stack, log)
    try:
        wait_for("the stored instruments' trades", lambda: min(count(s) for s in STORED) > 50, 60, proc, log)
        assert "streaming binance's stored instruments" in log.read_text()  # those it holds a lease on: all here
        connections = opened(sim, "binance")
        said = instruments(sim, dev_stack, "add", "binance", ADDED, "--no-progress")
        added, added_at = time.monotonic(), datetime.now(UTC)
        wait_for(f"{ADDED}'s trades to be stored", lambda: count(ADDED) > 0, 10, proc, log)
        took = time.monotonic() - added
        print(f"\n`instruments add binance {ADDED}` said: {said.strip()}")
        print(f"its first trade was stored {took:.2f} s after the command returned, with no restart")
        assert opened(sim, "binance") == connections, "subscribed on the open socket: no new connection"
        wait_for(f"more {ADDED} trades", lambda: count(ADDED) > 100, 15, proc, log)

        said = instruments(sim, dev_stack, "remove", "binance", ADDED)
        print(f"`instruments remove binance {ADDED}` said: {said.strip()}")
        wait_for(f"{ADDED} removed", lambda: f"removed {ADDED}" in log.read_text(), 10, proc, log)
        removed_by = datetime.now(UTC)  # the stream has unsubscribed by now: it ignores the symbol's later frames
        wait_for(f"{ADDED}'s feed record gone", lambda: not Feed.objects.filter(symbol=ADDED).exists(), 10, proc, log)
        btc = count("BTCUSDT")
        wait_for("the other instruments to go on", lambda: count("BTCUSDT") > btc + 150, 15, proc, log)
        # trades received before the removal may still be written after it (nothing received is dropped), none after
        last = stored("binance", ADDED)[-1][4]
        left = count(ADDED)
        print(
            f"{ADDED} removed: {left} trades stored, the last traded {(removed_by.timestamp() * 1000 - last):.0f} ms "
            f"before the removal was seen; BTCUSDT {count('BTCUSDT') - btc} more meanwhile"
        )
        assert last <= removed_by.timestamp() * 1000, f"{ADDED} traded after it was removed, and was stored"

        requests.post(f"{sim.url}/_sim/market", json={"paused": True}, timeout=5).raise_for_status()
        wait_for(
            "the last trades before the pause to be stored",
            lambda: all(stored("binance", s)[-1][0] == exchange_last_id(sim, s) for s in STORED),
            15,
            proc,
            log,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert proc.returncode == 0, log.read_text()[-4000:]
    for symbol in (*STORED, ADDED):
        print(f"{symbol}: {assert_equal_to_truth(sim, symbol)} trades stored, equal to the truth")
    assert took < 10
    # its record starts at its first live trade, or at the exchange's latest when its socket stayed unheard (a
    # resume point): nothing from before it was added; a hole between that trade and its first live one is filled
    first = Tick.objects.filter(exchange="binance", symbol=ADDED).order_by("trade_id").first()
    assert first is not None
    assert first.ts >= added_at - timedelta(seconds=2), "trades from before it was added were stored"
    assert not Gap.objects.filter(symbol=ADDED, start__lte=first.trade_id).exists()
