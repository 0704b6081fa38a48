"""Sustained trades/s one WebSocket client receives from the simulator in load mode.

Starts ``python -m exchangesim`` as a separate process (so server and client each get a core), sets
the synthetic rate with ``POST /_sim/market``, subscribes one ``<sym>@trade`` socket with the
``websockets`` client, and measures over a fixed window. Printed side by side: what the engine
emitted (``/_sim/status``) in the same window, so the ratio shows whether delivery keeps up.

    .venv/bin/python bench/exchangesim_throughput.py [--rate 20000] [--seconds 10] [--stream trade]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import websockets

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def emitted(base: str, symbol: str) -> int:
    return http_json(f"{base}/_sim/status")["symbols"][symbol]["trades_emitted"]


async def measure(base: str, ws_url: str, symbol: str, stream: str, seconds: float, warmup: float) -> dict:
    received = 0
    trades = 0
    last_id = None
    gaps = 0
    async with websockets.connect(f"{ws_url}/ws/{symbol.lower()}@{stream}", max_size=None, max_queue=None) as ws:
        end_warm = time.monotonic() + warmup
        while time.monotonic() < end_warm:
            await ws.recv()
        e0, t0 = emitted(base, symbol), time.monotonic()
        deadline = t0 + seconds
        while True:
            frame = json.loads(await ws.recv())
            received += 1
            trades += 1 if stream == "trade" else frame["l"] - frame["f"] + 1
            fid = frame["t"] if stream == "trade" else frame["a"]
            if last_id is not None and fid != last_id + 1:
                gaps += 1
            last_id = fid
            if time.monotonic() >= deadline:
                break
        elapsed = time.monotonic() - t0
        e1 = emitted(base, symbol)
    return {"frames": received, "trades": trades, "elapsed": elapsed, "emitted": e1 - e0, "gaps": gaps}


def run_once(rate: float, args: argparse.Namespace) -> dict:
    port = free_port()
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exchangesim",
            "--port",
            str(port),
            "--symbols",
            args.symbol,
            "--history-days",
            "0",
            "--rate",
            str(rate),
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                http_json(f"{base}/api/v3/ping")
                break
            except OSError:
                time.sleep(0.05)
        return asyncio.run(measure(base, ws_url, args.symbol, args.stream, args.seconds, args.warmup))
    finally:
        server.terminate()
        server.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="20000,40000,80000", help="synthetic trades/s asked of the engine, a sweep")
    ap.add_argument("--seconds", type=float, default=8.0, help="measuring window per rate")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--stream", choices=("trade", "aggTrade"), default="trade")
    ap.add_argument("--symbol", default="BTCUSDT")
    args = ap.parse_args()
    print(
        f"exchangesim load mode, one {args.symbol.lower()}@{args.stream} socket, websockets client, "
        f"{args.seconds:.0f} s windows, {os.cpu_count()} cores"
    )
    print(
        f"{'asked/s':>10} {'emitted/s':>10} {'received trades/s':>18} {'frames/s':>10} {'recv/emitted':>13} "
        f"{'vs 20k goal':>12} {'id gaps':>8}"
    )
    best = 0.0
    for rate in (float(r) for r in args.rates.split(",")):
        r = run_once(rate, args)
        recv = r["trades"] / r["elapsed"]
        emit = r["emitted"] / r["elapsed"]
        best = max(best, recv)
        print(
            f"{rate:>10,.0f} {emit:>10,.0f} {recv:>18,.0f} {r['frames'] / r['elapsed']:>10,.0f} "
            f"{recv / emit if emit else 0:>13.3f} {recv / 20000:>11.2f}x {r['gaps']:>8}"
        )
    print(f"sustained trades/s received by one client: {best:,.0f} (goal 20,000: {best / 20000:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
