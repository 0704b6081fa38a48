"""Live-feed latency: from the simulator's event time of a trade to its receipt by a browser-side WebSocket
client of the live page (``/ws/market/binance/BTCUSDT/``), and the sustained ingest rate of one stream process.

Starts its own mongod and redis-server (temporary folder), the simulator (``--rate`` raw trades/s), Daphne and
``manage.py stream`` as separate processes, exactly as ``make run`` wires them; then a client connects like the
page does and, for every trade it receives, takes ``now - trade time`` (one machine, one clock). The path
measured: simulator -> exchange socket -> stream (parse, buffer; flushed every 0.1 s) -> channel layer (Redis)
-> Daphne's consumer (coalesced to <= 10 messages/s per client) -> client. Then it runs
``bench/stream_ingest.py``'s measurement (the stream alone in the simulator's load mode) for the second figure.

    .venv/bin/python bench/feed_latency.py [--agg-rate 1000] [--rate 600] [--seconds 20] \
        [--ingest-rates 10000,15000,40000] [--ingest-seconds 10] [--ingest-warmup 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
SYMBOL = "BTCUSDT"

import stream_ingest  # noqa: E402  (bench/stream_ingest.py: the sustained-ingest measurement)


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


async def receive(ws_url: str, warmup: float, seconds: float) -> tuple[list[float], list[float], int, int, float]:
    """Latencies (ms) of every trade received in the window and of the oldest trade of each message (the
    one that waited longest for it), the messages, the trades they counted, and when the window began."""
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    oldest: list[float] = []
    messages = counted = 0
    async with connect(ws_url, origin="http://127.0.0.1", max_size=None) as ws:
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < warmup + seconds:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.01, warmup + seconds - elapsed))
            except TimeoutError:
                break
            now_ms = time.time() * 1000
            msg = json.loads(raw)
            if msg["type"] != "trades" or elapsed < warmup:
                continue
            messages += 1
            counted += msg["count"]
            latencies += [now_ms - t["time"] for t in msg["trades"]]
            oldest.append(now_ms - min(t["time"] for t in msg["trades"]))
    return latencies, oldest, messages, counted, began + warmup


class Steer(threading.Thread):
    """Holds the simulator near ``target`` aggregate trades/s for the whole run: every ``every`` seconds it reads
    the emitted aggregate ids and scales the raw rate by target/got (within 0.5x-2x). The synthetic market has
    stochastic volatility and bursts, so a fixed --rate gave anything from 430 to 3,000 aggregate trades/s.
    It keeps (time, last aggregate id) samples, from which the window's emitted rate is read."""

    def __init__(self, sim_url: str, rate: float, target: float, every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.sim_url, self.rate, self.target, self.every = sim_url, rate, target, every
        self.samples: list[tuple[float, int]] = [(time.monotonic(), stream_ingest.sim_last_agg_id(sim_url))]
        self.rates: list[float] = [rate]
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append((time.monotonic(), stream_ingest.sim_last_agg_id(self.sim_url)))
            (t0, a0), (t1, a1) = self.samples[-2:]
            if not self.target:
                continue
            got = (a1 - a0) / (t1 - t0)
            self.rate = min(200_000.0, self.rate * min(2.0, max(0.5, self.target / max(got, 1.0))))
            self.rates.append(self.rate)
            body = json.dumps({"rate": self.rate}).encode()
            request = urllib.request.Request(
                f"{self.sim_url}/_sim/market", data=body, headers={"Content-Type": "application/json"}, method="POST"
            )
            with urllib.request.urlopen(request, timeout=10):
                pass

    def emitted(self, began: float, ended: float) -> float:
        """Aggregate trades/s the simulator emitted between two monotonic times (nearest samples inside)."""
        inside = [s for s in self.samples if began - self.every / 2 <= s[0] <= ended + self.every / 2]
        (t0, a0), (t1, a1) = inside[0], inside[-1]
        return (a1 - a0) / (t1 - t0)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def latency(rate: float, target: float, warmup: float, seconds: float, mongo_uri: str, redis_uri: str) -> None:
    sim_port, web_port = stream_ingest.free_port(), stream_ingest.free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = os.environ | {
        "MONGODB_URI": mongo_uri,
        "REDIS_URL": redis_uri,
        "MONGODB_DB": "bench_latency",
        "BINANCE_REST_URL": sim_url,
        "BINANCE_WS_URL": f"ws://127.0.0.1:{sim_port}",
        "LOG_LEVEL": "WARNING",
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "exchangesim",
                    "--port",
                    str(sim_port),
                    "--symbols",
                    SYMBOL,
                    "--history-days",
                    "0",  # history starts at the day's start less the days: hours of trades to warm up from
                    "--rate",
                    str(rate),
                    "--log-level",
                    "WARNING",
                    "--no-warm-history",
                ],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
            )
        )
        wait_http(f"{sim_url}/_sim/status")
        steer = Steer(sim_url, rate, target)
        steer.start()
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run(
            [*manage, "seed_instruments", "--symbols", SYMBOL], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(web_port),
                    "tradingsite.asgi:application",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        procs.append(
            subprocess.Popen(
                [*manage, "stream", "--symbols", SYMBOL],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_http(f"http://127.0.0.1:{web_port}/api/v1/instruments")
        lat, oldest, messages, counted, began = asyncio.run(
            receive(f"ws://127.0.0.1:{web_port}/ws/market/binance/{SYMBOL}/", warmup, seconds)
        )
        time.sleep(steer.every)
        steer.done.set()
        steer.join()
        emitted = steer.emitted(began, began + seconds)
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(30)
    if not lat:
        print("no trade reached the client: is the stream running?")
        return
    print(
        f"simulator steered to {target:,.0f} aggregate trades/s (raw --rate {min(steer.rates):,.0f} to "
        f"{max(steer.rates):,.0f}): {emitted:,.0f} aggregate trades/s emitted and {counted / seconds:,.0f}/s "
        f"reached the client in the {seconds:g} s window (after {warmup:g} s warm-up)"
    )
    print(
        f"client received {messages} messages ({messages / seconds:.1f}/s) counting {counted:,} trades; "
        f"{len(lat):,} trades carried in them (each message carries at most the newest 100)"
    )
    for name, values in (("every trade carried", lat), ("oldest trade of each message", oldest)):
        print(
            f"event time -> client, {name + ':':<30} p50 {pct(values, 50):6.1f} ms   "
            f"p90 {pct(values, 90):6.1f} ms   p99 {pct(values, 99):6.1f} ms   max {max(values):6.1f} ms",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--rate", type=float, default=600.0, help="the simulator's starting --rate (raw trades/s) for the latency run"
    )
    p.add_argument(
        "--agg-rate",
        type=float,
        default=1000.0,
        help="steer the simulator to about this many aggregate trades/s all along (0: keep --rate)",
    )
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument(
        "--ingest-rates",
        default="10000,15000,40000",
        help="raw trades/s for the sustained-ingest runs ('' to skip them)",
    )
    p.add_argument("--ingest-seconds", type=float, default=10.0, help="measuring window of each sustained-ingest run")
    p.add_argument("--ingest-warmup", type=float, default=5.0)
    args = p.parse_args()

    from tradingsite.devstack import start_mongod, start_redis

    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        mongo, redis = start_mongod(Path(tmp) / "mongo"), start_redis(Path(tmp) / "redis")
        try:
            print("== latency: simulator event time -> browser-side WebSocket client ==")
            latency(args.rate, args.agg_rate, args.warmup, args.seconds, mongo.uri, redis.uri)
            if args.ingest_rates:
                print("\n== sustained ingest of one stream process (bench/stream_ingest.py) ==")
                stream_ingest.measure(args.ingest_rates, args.ingest_seconds, args.ingest_warmup, mongo, redis)
        finally:
            redis.stop()
            mongo.stop()


if __name__ == "__main__":
    main()
