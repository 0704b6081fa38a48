"""``make run`` / ``make demo``: the ports come from PORT and SIM_PORT and are checked before anything starts;
end to end, the site, the stream, a Celery worker and beat come up under honcho on the dev stack with the default
instruments, a second terminal's manage.py works against the same stack, and SIGTERM stops every one of them."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
from pymongo import MongoClient

from markets.venues import DEFAULT_INSTRUMENTS
from tests.conftest import wait_for
from tradingsite.devstack import Service, free_port
from tradingsite.running_stack import STATE_FILE

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("variable", "args", "command"),
    [("PORT", [], "make run"), ("PORT", ["--demo"], "make demo"), ("SIM_PORT", ["--demo"], "make demo")],
)
def test_a_taken_port_stops_it_before_anything_starts(
    variable: str, args: list[str], command: str, tmp_path: Path
) -> None:
    """When the site's (PORT) or the simulator's (SIM_PORT) port is taken, nothing is printed or started: one
    line on stderr names the port and the variable to move it with, and the exit code is 2, without a
    traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        env = os.environ | {"PORT": str(free_port()), "SIM_PORT": str(free_port()), "DEV_STACK_DIR": str(tmp_path)}
        env[variable] = str(busy)
        out = subprocess.run(
            [sys.executable, "-m", "tradingsite.run", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 2
    assert out.stdout == ""
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith(f"{command}: ")
    assert f"port {busy} on 127.0.0.1 is in use" in out.stderr
    assert re.search(rf"run {variable}=\d+ {command}$", out.stderr.strip()), out.stderr
    assert list(tmp_path.iterdir()) == [], "nothing was started (no database, no published stack)"


@pytest.mark.parametrize("variable", ["PORT", "SIM_PORT"])
def test_a_malformed_port_is_named(variable: str, tmp_path: Path) -> None:
    """PORT=abc (or SIM_PORT=abc) stops make run with exit code 2 and a message naming the variable and the value."""
    env = os.environ | {"DEV_STACK_DIR": str(tmp_path), variable: "abc"}
    out = subprocess.run(
        [sys.executable, "-m", "tradingsite.run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.strip() == (
        f"make run: {variable}='abc' is not a port: expected a whole number from 1 to 65535, "
        f"e.g. {8000 if variable == 'PORT' else 9900}"
    )


@pytest.mark.slow
def test_run_falls_back_to_the_simulator_serves_on_port_and_stops_cleanly(
    dev_stack: dict[str, Service], tmp_path: Path
) -> None:
    """``python -m tradingsite.run`` with Binance unreachable says so and falls back to the simulator on SIM_PORT,
    migrates, seeds BTCUSDT/ETHUSDT/BNBUSDT/SOLUSDT from it, prints where everything is, and runs the Procfile
    under honcho: Daphne serves the page, the API and the admin on PORT, an anonymous candle request's missing
    hour is queued and the worker fills it from the simulator, the stream stores live trades, the Celery worker
    answers a ping, beat sends scan_gaps and the worker runs it, every process is told the data is simulated.
    ``manage.py backfill`` in a second terminal (a clean environment) finds the stack, simulator included, and
    stores the range's trades. SIGTERM stops all of them, leaving no process behind and no published stack."""
    port, sim_port = free_port(), free_port()
    nowhere = f"http://127.0.0.1:{free_port()}"  # "Binance": nothing listens there
    redis_url = f"{dev_stack['redis'].uri.rsplit('/', 1)[0]}/6"  # a database of its own for Celery's queues
    env = os.environ | {
        "PORT": str(port),
        "SIM_PORT": str(sim_port),
        "BINANCE_REST_URL": nowhere,
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": redis_url,
        "MONGODB_DB": "run_e2e",
        "SCAN_GAPS_SECONDS": "2",
        "CELERY_BEAT_SCHEDULE_FILENAME": str(tmp_path / "beat-schedule"),
        "DEV_STACK_DIR": str(tmp_path / "stack"),
        "API_THROTTLE_ANON": "none",  # the test polls the API anonymously; the limit has tests of its own
    }
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tradingsite.run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed whole if the test fails
        )
    base = f"http://127.0.0.1:{port}"
    family: list[psutil.Process] = []
    try:
        wait_for("the site on PORT", lambda: _answers(f"{base}/api/v1/instruments"), 90, proc, log)
        resp = requests.get(f"{base}/api/v1/instruments", timeout=5)
        assert resp.status_code == 200
        assert sorted((i["exchange"], i["symbol"]) for i in resp.json()) == sorted(
            (e, s) for e, defaults in DEFAULT_INSTRUMENTS.items() for s, _, _ in defaults
        )
        assert all(i["tick_size"] for i in resp.json()), "filters come from the simulator's instrument lists"
        page = requests.get(f"{base}/", timeout=10)
        assert page.status_code == 200
        assert "simulated" in page.text.lower()
        minute = int(time.time() * 1000) // 60_000 * 60_000  # once: a minute turning between two reads asks 61
        hour = {"symbol": "SOLUSDT", "start": minute - 3_600_000 - 600_000, "end": minute - 600_000}

        def hour_of_candles() -> dict[str, Any] | None:
            resp = requests.get(f"{base}/api/v1/candles", timeout=30, params=hour)
            return resp.json() if resp.status_code == 200 and resp.json()["complete"] else None

        # An anonymous read answers from MongoDB and queues what is missing; the stack's worker fills it from
        # the simulator (the stream's signal warm-up may have stored the hour already).
        wait_for("the hour's candles from the worker", lambda: hour_of_candles() is not None, 60, proc, log, every=1)
        candles = hour_of_candles()
        assert candles is not None
        assert len(candles["candles"]) == 60
        assert requests.get(f"{base}/admin/login/", timeout=5).status_code == 200
        assert requests.get(f"{base}/static/admin/css/base.css", timeout=5).status_code == 200
        assert requests.get(f"{base}/api/docs/", timeout=5).status_code == 200
        for exchange, symbol in (("binance", "ETHUSDT"), ("coinbase", "ETH-USD"), ("kraken", "ETHUSD")):
            wait_for(
                f"the stream to store a {exchange} {symbol} trade",
                lambda exchange=exchange, symbol=symbol: bool(
                    requests.get(
                        f"{base}/api/v1/ticks", timeout=5, params={"exchange": exchange, "symbol": symbol}
                    ).json()["results"]
                ),
                30,
                proc,
                log,
            )
        _backfill_in_a_second_terminal(tmp_path / "stack", dev_stack["mongo"].uri, f"http://127.0.0.1:{sim_port}")
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
            f"daphne -b 127.0.0.1 -p {port} ",
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
        try:
            proc.wait(60)
        finally:
            _kill_what_is_left(proc, family)
    out = log.read_text()
    assert proc.returncode == 0, out
    assert f"Binance cannot be reached at {nowhere}" in out
    assert f"exchange simulator (simulated market data) on http://127.0.0.1:{sim_port}" in out
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
    assert not (tmp_path / "stack" / STATE_FILE).exists(), "the published stack is removed when it stops"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/api/v1/instruments", timeout=2)


def _answers(url: str) -> bool:
    """Whether ``url`` answers at all (any status)."""
    try:
        requests.get(url, timeout=2)
    except requests.RequestException:
        return False
    return True


def _backfill_in_a_second_terminal(stack: Path, mongodb_uri: str, sim_url: str) -> None:
    """``manage.py backfill`` with nothing in its environment but PATH (and where this checkout's stack is)
    stores every BTCUSDT trade of two minutes ten minutes ago from the stack's simulator into the stack's
    database (``run_e2e``, which only the running stack names)."""
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": str(stack), "DEV_STACK_DIR": str(stack)}
    args = ["backfill", "--what", "trades", "--symbol", "BTCUSDT", "--start", "12m ago", "--end", "10m ago"]
    done = subprocess.run(
        [sys.executable, "manage.py", *args, "--no-progress"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"using the exchange simulator of the running make run ({sim_url})" in done.stderr
    figures = {
        name: int(n.replace(",", ""))
        for name, n in re.findall(r"^\s+(in range|newly stored|still missing)\s+([\d,]+)", done.stdout, re.M)
    }
    assert figures["in range"] > 0, done.stdout
    assert figures["newly stored"] == figures["in range"], done.stdout
    assert figures["still missing"] == 0, done.stdout
    from markets.models import Tick

    client: MongoClient = MongoClient(mongodb_uri)
    try:
        rest = {"exchange": "binance", "symbol": "BTCUSDT", "source": "rest"}
        assert client["run_e2e"][Tick._meta.db_table].count_documents(rest) >= figures["in range"]
    finally:
        client.close()


def _kill_what_is_left(proc: subprocess.Popen[bytes], family: list[psutil.Process]) -> None:
    """Kill the run's process group and each of its processes' groups (honcho gives each its own session), so a
    failed test leaves nothing running."""
    groups = {proc.pid}
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            groups.add(os.getpgid(p.pid))
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(30)
