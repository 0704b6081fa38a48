"""A 418 with ``Retry-After: 150`` on a gap fill, end to end: ``manage.py stream`` on two symbols against the
simulator; the socket is dropped, so both symbols' gaps are filled at once; the first fill request is answered 418
asking for 150 s (longer than the 120 s a request waits). The stream sends nothing to the exchange for those 150 s
(the other symbol's fill included), says that it waits and until when (log, metric), then fills both gaps: the stored
trades and 1m candles equal the simulator's truth, and the simulator counted no backoff violation and no ban."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from exchangesim.server import Simulator, running_in_thread
from markets.models import Gap, Tick
from tests.conftest import sim_config, wait_for
from tests.e2e import test_stream_recovery as recovery
from tests.e2e.conftest import manage_env
from tradingsite.devstack import Service

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ("BTCUSDT", "ETHUSDT")
RETRY_AFTER = 150


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """BTCUSDT and ETHUSDT at 50 synthetic trades/s each."""
    with running_in_thread(sim_config(rate=50.0, symbols=SYMBOLS)) as s:
        yield s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_stream(sim: Simulator, dev_stack: dict[str, Service], metrics_port: int, log: Path) -> subprocess.Popen[str]:
    """The stream on both symbols, its output into ``log`` (a pipe nobody reads for minutes fills up and blocks the
    stream's logging, and with it the stream)."""
    env = manage_env(sim, dev_stack)
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "stream",
            "--symbols",
            ",".join(SYMBOLS),
            "--stall-seconds",
            "3",
            "--metrics-port",
            str(metrics_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


def blocked_until(metrics_port: int) -> float | None:
    """The stream's tradingsite_exchange_blocked_until_seconds for Binance, None before it has one."""
    text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    found = re.search(r'^tradingsite_exchange_blocked_until_seconds\{exchange="binance"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


def status(sim: Simulator) -> dict[str, Any]:
    return requests.get(f"{sim.url}/_sim/status", timeout=5).json()


def compare(sim: Simulator, symbol: str) -> tuple[int, int, int, int]:
    """``symbol``'s stored trades against the truth of the same id range: (trades compared, missing, doubled,
    1m candles compared), with every field and candle checked exactly (test_stream_recovery's helpers)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(recovery, "SYMBOL", symbol)
        docs = recovery.stored()
        ids = [int(d["trade_id"]) for d in docs]
        expected = {e["a"] for e in recovery.truth(sim, ids[0], ids[-1])}
        missing, doubled = len(expected - set(ids)), len(ids) - len(set(ids))
        recovery.assert_equal_to_truth(sim, docs)
        candles = recovery.assert_candles_equal_truth(sim, docs)
    return len(expected), missing, doubled, candles


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_418_asking_for_150_s_on_a_gap_fill_is_honoured_by_every_requester(
    sim: Simulator, dev_stack: dict[str, Service], tmp_path: Path
) -> None:
    metrics_port = free_port()
    log = tmp_path / "stream.log"
    proc = start_stream(sim, dev_stack, metrics_port, log)
    try:
        for symbol in SYMBOLS:
            wait_for(f"live {symbol} ticks", lambda s=symbol: Tick.objects.filter(symbol=s).count() > 200, 60, proc)
        before = status(sim)["venues"]["binance"]["requests"].get("/api/v3/aggTrades", 0)
        requests.post(
            f"{sim.url}/_sim/rest/fault",
            timeout=5,
            json={"status": 418, "count": 1, "retry_after": RETRY_AFTER, "path_prefix": "/api/v3/aggTrades"},
        ).raise_for_status()
        dropped_at = time.time()
        requests.post(f"{sim.url}/_sim/ws/drop", json={"mode": "close", "seconds": 5}, timeout=5).raise_for_status()
        ours = Gap.objects.filter(exchange="binance", symbol__in=SYMBOLS, kind="trades")
        wait_for("both gaps", lambda: ours.count() >= 2, 30, proc)
        wait_for("the 418", lambda: status(sim)["faults_injected"].get("rest_418") == 1, 30, proc)
        told_at = time.time()
        wait_for("the wait in the metrics", lambda: (blocked_until(metrics_port) or 0) > told_at, 10, proc)
        until = blocked_until(metrics_port)
        assert until is not None
        assert until == pytest.approx(told_at + RETRY_AFTER, abs=10)
        # While it holds: nothing more reached the exchange, and both gaps wait.
        time.sleep(5)
        during = status(sim)
        assert during["venues"]["binance"]["requests"]["/api/v3/aggTrades"] == before + 1
        assert not ours.filter(state="filled").exists()
        wait_for(
            "both gaps to be filled",
            lambda: ours.count() >= 2 and not ours.exclude(state="filled").exists(),
            RETRY_AFTER + 90,
            proc,
            log,
        )
        recovered_at = time.time()
        time.sleep(2)  # live tracking goes on after the recovery
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        out = log.read_text()
        assert proc.returncode == 0, out[-3000:]
    after = status(sim)
    injected = after["faults_injected"]
    print(f"\nfault: HTTP 418 with Retry-After {RETRY_AFTER} s on the gap fill of {', '.join(SYMBOLS)}")
    print(f"exchange blocked until {until:.1f} ({until - told_at:.1f} s after the 418 was counted)")
    rows = []
    for gap in ours.order_by("symbol", "start"):
        assert gap.recovered == gap.end - gap.start + 1 == gap.missing
        waited = (gap.updated_at - gap.detected_at).total_seconds()
        if gap.detected_at.timestamp() <= told_at:  # a gap opened before the 418 was told waits it out
            assert gap.updated_at.timestamp() >= until - 1, "the fill waited out the Retry-After"
        compared, missing, doubled, candles = compare(sim, gap.symbol)
        rows.append((gap.symbol, compared, missing, doubled, waited, candles))
        assert (missing, doubled) == (0, 0)
    print("symbol   | trades compared | missing | doubled | time to recover | 1m candles exact")
    for symbol, compared, missing, doubled, waited, candles in rows:
        print(f"{symbol:8} | {compared:15} | {missing:7} | {doubled:7} | {waited:13.1f} s | {candles}")
    print(f"socket dropped to both gaps filled: {recovered_at - dropped_at:.1f} s")
    print(f"/_sim/status faults_injected: {injected}")
    print(f"aggTrades requests seen by the simulator: {after['venues']['binance']['requests']['/api/v3/aggTrades']}")
    assert injected.get("rest_418") == 1
    assert "backoff_violation" not in injected
    assert "ban_418" not in injected
    for symbol in SYMBOLS:
        lines = [ln for ln in out.splitlines() if "waiting for the exchange's Retry-After until" in ln and symbol in ln]
        assert lines, f"{symbol}: the wait is logged\n{out[-3000:]}"
        print(lines[0])
        assert re.search(r"until \d\d:\d\d:\d\d UTC \(1[45]\d s\); gap \d+\.\.\d+ will be filled then", lines[0])
