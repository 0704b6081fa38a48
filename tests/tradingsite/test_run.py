"""``make run`` / ``make demo`` end to end: the site, the stream, a Celery worker and beat come up under honcho
on the dev stack with the default instruments, and SIGTERM stops every one of them."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from markets.venues import DEFAULT_INSTRUMENTS
from tests.conftest import wait_for
from tradingsite.devstack import Service, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_serves_the_api_and_stops_cleanly(dev_stack: dict[str, Service], tmp_path: Path) -> None:
    """``python -m tradingsite.run --demo`` migrates, seeds BTCUSDT/ETHUSDT/BNBUSDT/SOLUSDT from the simulator,
    prints where everything is, and runs the Procfile under honcho: Daphne serves the API and admin and fills
    a candle request from the simulator, the stream stores live trades, the Celery worker answers a ping,
    beat sends scan_gaps and the worker runs it, every process is told the data is simulated; SIGTERM
    stops all of them, leaving no process behind."""
    port, sim_port = free_port(), free_port()
    redis_url = f"{dev_stack['redis'].uri.rsplit('/', 1)[0]}/6"  # a database of its own for Celery's queues
    env = os.environ | {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": redis_url,
        "MONGODB_DB": "run_e2e",
        "SCAN_GAPS_SECONDS": "2",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule"),
    }
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tradingsite.run", "--demo", "--port", str(port), "--sim-port", str(sim_port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    family: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                resp = requests.get(f"{base}/api/v1/instruments", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the site did not come up within 90 s"
                time.sleep(0.5)
        assert resp.status_code == 200
        assert sorted((i["exchange"], i["symbol"]) for i in resp.json()) == sorted(
            (e, s) for e, defaults in DEFAULT_INSTRUMENTS.items() for s, _, _ in defaults
        )
        assert all(i["tick_size"] for i in resp.json()), "filters come from the simulator's instrument lists"
        candles = requests.get(
            f"{base}/api/v1/candles",
            timeout=30,
            params={
                "symbol": "SOLUSDT",
                "start": int(time.time() * 1000) // 60_000 * 60_000 - 3_600_000 - 600_000,
                "end": int(time.time() * 1000) // 60_000 * 60_000 - 600_000,
            },
        ).json()
        assert len(candles["candles"]) == 60
        assert candles["complete"]
        assert requests.get(f"{base}/admin/login/", timeout=5).status_code == 200
        assert requests.get(f"{base}/static/admin/css/base.css", timeout=5).status_code == 200
        assert requests.get(f"{base}/api/docs/", timeout=5).status_code == 200
        for exchange, symbol in (("binance", "ETHUSDT"), ("coinbase", "ETH-USD"), ("kraken", "ETHUSD")):
            deadline = time.monotonic() + 30
            while not requests.get(
                f"{base}/api/v1/ticks", timeout=5, params={"exchange": exchange, "symbol": symbol}
            ).json()["results"]:
                assert time.monotonic() < deadline, f"the stream stored no {exchange} {symbol} trade within 30 s"
                time.sleep(0.5)
        ping = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "tradingsite", "inspect", "ping", "--timeout", "5"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert "pong" in ping.stdout
        scanned = re.compile(r"Task markets\.tasks\.scan_gaps\[[-0-9a-f]+\] succeeded")
        wait_for(
            "beat's scan_gaps to run on the worker", lambda: scanned.search(log.read_text()) is not None, 30, proc, log
        )
        family = psutil.Process(proc.pid).children(recursive=True)
        commands = " ".join(" ".join(p.cmdline()) for p in family)
        for part in (
            "honcho start",
            "daphne",
            "manage.py stream",
            "celery -A tradingsite worker",
            "celery -A tradingsite beat",
        ):
            assert part in commands
        assert {p.environ().get("MARKET_SIMULATED") for p in family} == {"1"}
    finally:
        if not family:
            with contextlib.suppress(psutil.NoSuchProcess):
                family = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    out = log.read_text()
    assert proc.returncode == 0, out
    assert "SIMULATED" in out
    for line in (
        f"{base}/ ",
        f"{base}/admin/",
        f"{base}/api/docs/",
        "manage.py feed drop --seconds 10",
        ".venv/bin/python manage.py createsuperuser",
        "web, stream, worker, beat",
    ):
        assert line in out, f"the banner lacks {line!r}"
    left = [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"left running after SIGTERM: {[' '.join(p.cmdline()) for p in left]}"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/api/v1/instruments", timeout=2)
