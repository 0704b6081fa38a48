"""Sustained ingest of one ``manage.py stream`` process against the simulator's load mode.

Starts its own mongod and redis-server (temporary folder), then for each rate: the simulator as a
separate process (``--rate`` raw trades/s on BTCUSDT), the stream as another, its first stored trade, a warm-up, and a
measuring window. Printed side by side from the same window: aggregate trades the simulator emitted
(``/_sim/status``) and aggregate trades the stream stored (the highest stored id; ids are contiguous
and gaps are filled), their ratio, how many ids the store was behind at the end of the window, and the
CPU each process used in the window (100% is one core): all of it shares the machine's cores with
mongod, so a stream at 100% is the limit, while a saturated machine points at the simulator or mongod.

The simulator runs without history by default (``--history-days 0``): its history starts at the UTC day's
start less the days asked, so any history at a load-mode rate is hours of trades by the afternoon, and the
stream's start-up requests (the signal warm-up's 1,000 one-minute candles) would have the simulator
aggregate them on a core during the measuring window. ``--history-days 0.02`` shows that cost.

    .venv/bin/python bench/stream_ingest.py [--rates 2000,10000,20000] [--seconds 10] [--history-days 0]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SYMBOL = "BTCUSDT"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sim_last_agg_id(base: str) -> int:
    with urllib.request.urlopen(f"{base}/_sim/status", timeout=10) as resp:
        return int(json.loads(resp.read())["symbols"][SYMBOL]["last_agg_id"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 once it is gone)."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system


def first_stored(stream: subprocess.Popen, stored_max: Callable[[], int], timeout: float = 120.0) -> None:
    """Wait until the stream has stored its first trade: it takes seconds to start (Django, the signal warm-up,
    the socket), and a window opened before that measured the start, not the ingest."""
    deadline = time.monotonic() + timeout
    while stored_max() == 0:
        if stream.poll() is not None:
            raise RuntimeError(f"the stream exited ({stream.returncode}) before storing a trade")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the stream stored no trade within {timeout:g} s")
        time.sleep(0.1)


def run_once(
    rate: float,
    seconds: float,
    warmup: float,
    mongo_uri: str,
    redis_uri: str,
    db: str,
    mongod_pid: int,
    history_days: float = 0.0,
) -> dict:
    from pymongo import MongoClient

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exchangesim",
            "--port",
            str(port),
            "--symbols",
            SYMBOL,
            "--history-days",
            str(history_days),
            "--rate",
            str(rate),
            "--log-level",
            "WARNING",
            "--no-warm-history",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    env = os.environ | {
        "MONGODB_URI": mongo_uri,
        "REDIS_URL": redis_uri,
        "MONGODB_DB": db,
        "BINANCE_REST_URL": base,
        "BINANCE_WS_URL": f"ws://127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
    }
    stream = None
    ticks = MongoClient(mongo_uri)[db]["markets_tick"]

    def stored_max() -> int:
        doc = ticks.find_one({"symbol": SYMBOL}, {"trade_id": 1}, sort=[("trade_id", -1)])
        return int(doc["trade_id"]) if doc else 0

    try:
        for _ in range(200):
            try:
                sim_last_agg_id(base)
                break
            except OSError:
                time.sleep(0.05)
        ticks.delete_many({})
        stream = subprocess.Popen(
            [sys.executable, "manage.py", "stream", "--symbols", SYMBOL],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        first_stored(stream, stored_max)
        time.sleep(warmup)
        pids = {"stream": stream.pid, "sim": sim.pid, "mongod": mongod_pid}
        c0 = {k: cpu_seconds(pid) for k, pid in pids.items()}
        e0, s0, t0 = sim_last_agg_id(base), stored_max(), time.monotonic()
        time.sleep(seconds)
        e1, s1, t1 = sim_last_agg_id(base), stored_max(), time.monotonic()
        cpu = {k: (cpu_seconds(pid) - c0[k]) / (t1 - t0) for k, pid in pids.items()}
        return {"emitted": (e1 - e0) / (t1 - t0), "stored": (s1 - s0) / (t1 - t0), "behind": e1 - s1, "cpu": cpu}
    finally:
        for p in (stream, sim):
            if p is not None:
                p.terminate()
                p.wait(30)


def measure(rates: str, seconds: float, warmup: float, mongo: object, redis: object, history_days: float = 0.0) -> None:
    """Migrate a "bench" database on ``mongo`` and print one row per raw rate of ``rates`` (comma-separated)."""
    env = os.environ | {"MONGODB_URI": mongo.uri, "REDIS_URL": redis.uri, "MONGODB_DB": "bench"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    print(
        f"{'raw/s asked':>12} {'agg/s emitted':>14} {'agg/s stored':>13} {'stored/emitted':>15} "
        f"{'ids behind at end':>18}  CPU % stream / sim / mongod (of {os.cpu_count()} cores)"
    )
    for rate in (float(r) for r in rates.split(",")):
        r = run_once(rate, seconds, warmup, mongo.uri, redis.uri, "bench", mongo.process.pid, history_days)
        cpu = r["cpu"]
        print(
            f"{rate:>12,.0f} {r['emitted']:>14,.0f} {r['stored']:>13,.0f} "
            f"{r['stored'] / r['emitted']:>15.3f} {r['behind']:>18,}  "
            f"{cpu['stream']:>5.0%} / {cpu['sim']:>4.0%} / {cpu['mongod']:>4.0%}",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="2000,10000,20000", help="raw synthetic trades/s asked of the simulator")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--history-days", type=float, default=0.0, help="the simulator's --history-days")
    args = p.parse_args()

    from tradingsite.devstack import start_mongod, start_redis

    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        mongo, redis = start_mongod(Path(tmp) / "mongo"), start_redis(Path(tmp) / "redis")
        try:
            measure(args.rates, args.seconds, args.warmup, mongo, redis, args.history_days)
        finally:
            redis.stop()
            mongo.stop()


if __name__ == "__main__":
    main()
