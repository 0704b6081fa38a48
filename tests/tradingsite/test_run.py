"""``make run`` / ``make demo`` end to end: the site comes up on the dev stack with the default instruments."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tradingsite.devstack import Service, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_serves_the_api_and_stops_cleanly(dev_stack: dict[str, Service]) -> None:
    """``python -m tradingsite.run --demo`` migrates, seeds BTCUSDT/ETHUSDT/BNBUSDT/SOLUSDT from the simulator,
    serves the API and admin on Daphne, fills a candle request from the simulator, streams live trades,
    and stops everything on SIGTERM."""
    port, sim_port = free_port(), free_port()
    env = os.environ | {"MONGODB_URI": dev_stack["mongo"].uri, "REDIS_URL": dev_stack["redis"].uri,
                        "MONGODB_DB": "run_e2e"}
    proc = subprocess.Popen([sys.executable, "-m", "tradingsite.run", "--demo", "--port", str(port),
                             "--sim-port", str(sim_port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                resp = requests.get(f"{base}/api/v1/instruments", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the site did not come up within 90 s"
                time.sleep(0.5)
        assert resp.status_code == 200
        assert [i["symbol"] for i in resp.json()] == ["BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT"]
        assert all(i["tick_size"] for i in resp.json()), "filters come from the simulator's exchangeInfo"
        candles = requests.get(f"{base}/api/v1/candles", timeout=30, params={
            "symbol": "SOLUSDT", "start": int(time.time() * 1000) // 60_000 * 60_000 - 3_600_000 - 600_000,
            "end": int(time.time() * 1000) // 60_000 * 60_000 - 600_000}).json()
        assert len(candles["candles"]) == 60
        assert candles["complete"]
        assert requests.get(f"{base}/admin/login/", timeout=5).status_code == 200
        assert requests.get(f"{base}/static/admin/css/base.css", timeout=5).status_code == 200
        assert requests.get(f"{base}/api/docs/", timeout=5).status_code == 200
        deadline = time.monotonic() + 30
        while not requests.get(f"{base}/api/v1/ticks", timeout=5, params={"symbol": "ETHUSDT"}).json()["results"]:
            assert time.monotonic() < deadline, "the stream stored no ETHUSDT trade within 30 s"
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "SIMULATED" in out
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/api/v1/instruments", timeout=2)
