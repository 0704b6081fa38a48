"""How fast the simulator answers ``/_sim/status`` while one socket streams a whole universe, and without it.

Starts ``python -m exchangesim --universe N --rate R`` as a process, times ``/api/v3/ping`` from the spawn, then
asks ``/_sim/status`` for ``--seconds`` (one request every ``--interval`` s, each timed) twice in the same run:
first with no stream connected (the baseline), then while a subscriber process holds one combined socket
(``/stream?streams=...``) on every Binance symbol's ``<sym>@<stream>`` and reads it as fast as it can. The
subscriber is a process of its own, so its reading does not compete with the timing client for a GIL; it parses
every frame and counts the ids that do not follow the previous one of their stream (``id gaps``: frames lost).

Printed per phase: status latency p50/p90/p99/max over the requests, the simulator's ``loop_lag_max_ms`` at the
end of the phase (the longest the clock was held up since the start), Binance trades/s emitted, and for the
loaded phase the frames/s the subscriber received.

    .venv/bin/python bench/sim_status.py [--universe 300] [--rate 30000] [--seconds 20] [--stream aggTrade]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def spawn(args: argparse.Namespace) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "exchangesim", "--port", "0", "--log-level", "WARNING"]
    cmd += ["--universe", str(args.universe), "--rate", str(args.rate), "--seed", str(args.seed)]
    if args.history_days is not None:
        cmd += ["--history-days", str(args.history_days)]
    if args.no_warm_history:
        cmd.append("--no-warm-history")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


async def ping_after_spawn(http: aiohttp.ClientSession, url: str, spawned: float) -> float:
    """Seconds from the spawn to the first answered ``/api/v3/ping``."""
    while True:
        try:
            async with http.get(f"{url}/api/v3/ping", timeout=aiohttp.ClientTimeout(total=5)) as r:
                if r.status == 200:
                    return time.monotonic() - spawned
        except (TimeoutError, aiohttp.ClientError):
            pass
        await asyncio.sleep(0.02)


async def status(http: aiohttp.ClientSession, url: str) -> tuple[float, dict]:
    """One ``/_sim/status``: how long it took (seconds) and what it said."""
    t0 = time.perf_counter()
    async with http.get(f"{url}/_sim/status", timeout=aiohttp.ClientTimeout(total=30)) as r:
        body = await r.read()
    took = time.perf_counter() - t0
    return took, json.loads(body)


def binance_emitted(st: dict) -> int:
    return sum(s["trades_emitted"] for s in st["venues"]["binance"]["symbols"].values())


async def phase(http: aiohttp.ClientSession, url: str, seconds: float, interval: float) -> dict:
    """Ask the status for ``seconds``; latencies, the clock's lag and Binance's emitted trades/s meanwhile."""
    took0, st0 = await status(http, url)
    t0, e0 = time.monotonic(), binance_emitted(st0)
    latencies = [took0]
    end = t0 + seconds
    while time.monotonic() < end:
        await asyncio.sleep(interval)
        took, st = await status(http, url)
        latencies.append(took)
    elapsed = time.monotonic() - t0
    return {
        "latencies": latencies,
        "lag": st["loop_lag_max_ms"] if len(latencies) > 1 else st0["loop_lag_max_ms"],
        "emitted_per_s": (binance_emitted(st if len(latencies) > 1 else st0) - e0) / elapsed,
    }


# -- the subscriber (a process of its own: ``sim_status.py --subscriber URL STREAM SECONDS``) ----------------------
async def subscribe(ws_url: str, streams: list[str], seconds: float, warmup: float) -> dict:
    """Read the combined socket for ``warmup`` then ``seconds``; frames and id gaps counted over ``seconds``."""
    last: dict[str, int] = {}
    frames = gaps = 0
    query = "/".join(streams)
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{ws_url}/stream?streams={query}", max_msg_size=0, autoping=True) as ws,
    ):
        print(json.dumps({"connected": True}), flush=True)
        counting_from = time.monotonic() + warmup
        end = counting_from + seconds
        counting = False
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frame = json.loads(msg.data)
            data = frame["data"]
            fid = data["a"] if "a" in data else data["t"]
            prev = last.get(frame["stream"])
            last[frame["stream"]] = fid
            now = time.monotonic()
            if now >= end:
                break
            if not counting and now >= counting_from:
                counting, frames, gaps = True, 0, 0
                started = now
            frames += 1
            if prev is not None and fid != prev + 1:
                gaps += 1
    elapsed = time.monotonic() - started if counting else 0.0
    return {"frames": frames, "gaps": gaps, "elapsed": elapsed, "streams": len(last)}


def subscriber_main(ws_url: str, streams_file: str, seconds: float, warmup: float) -> int:
    streams = Path(streams_file).read_text().split()
    print(json.dumps(asyncio.run(subscribe(ws_url, streams, seconds, warmup))), flush=True)
    return 0


# -- the run ----------------------------------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> dict:
    spawned = time.monotonic()
    proc = spawn(args)
    sub: asyncio.subprocess.Process | None = None
    try:
        first = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 120)  # type: ignore[union-attr]
        if not first.startswith("exchange simulator on http://"):
            raise RuntimeError(f"the simulator did not start: {first!r}")
        url = first.split()[3]
        ws_url = url.replace("http://", "ws://", 1)  # Binance is mounted at the root
        async with aiohttp.ClientSession() as http:
            ping_s = await ping_after_spawn(http, url, spawned)
            await asyncio.sleep(args.settle)
            warm_s = None
            if args.after_warm:  # steady state: the history warm-up (minutes of a worker) is over
                for _ in range(3600):  # a second apart, an hour at most
                    if not (await status(http, url))[1].get("history_warming"):
                        break
                    await asyncio.sleep(1)
                warm_s = time.monotonic() - spawned
            _, st = await status(http, url)
            symbols = sorted(st["venues"]["binance"]["symbols"])
            streams = [f"{s.lower()}@{args.stream}" for s in symbols]
            baseline = await phase(http, url, args.seconds, args.interval)
            streams_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"sim_status_streams_{os.getpid()}.txt"
            streams_file.write_text("\n".join(streams))
            sub = await asyncio.create_subprocess_exec(
                *(sys.executable, __file__, "--subscriber", ws_url, str(streams_file)),
                *("--seconds", str(args.seconds + 1), "--warmup", str(args.warmup)),
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
            hello = (await asyncio.wait_for(sub.stdout.readline(), 30)).decode()  # type: ignore[union-attr]
            if "connected" not in hello:
                raise RuntimeError(f"the subscriber did not connect: {hello!r}")
            await asyncio.sleep(args.warmup)
            loaded = await phase(http, url, args.seconds, args.interval)
            line = await asyncio.wait_for(sub.stdout.readline(), 60)  # type: ignore[union-attr]
            streams_file.unlink(missing_ok=True)
            received = json.loads(line)
        return {
            "ping_s": ping_s,
            "warm_s": warm_s,
            "symbols": len(symbols),
            "baseline": baseline,
            "loaded": loaded,
            "sub": received,
        }
    finally:
        if sub is not None and sub.returncode is None:
            sub.kill()
            await sub.wait()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def row(name: str, ph: dict, frames: str) -> str:
    ms = [x * 1000 for x in ph["latencies"]]
    return (
        f"{name:<22} {len(ms):>5} {quantile(ms, 0.5):>7.1f} {quantile(ms, 0.9):>7.1f} {quantile(ms, 0.99):>7.1f} "
        f"{max(ms):>7.1f} {ph['lag']:>8.0f} {ph['emitted_per_s']:>11,.0f} {frames:>10}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--universe", type=int, default=300)
    ap.add_argument("--rate", type=float, default=30000, help="Binance's total synthetic trades/s")
    ap.add_argument("--seconds", type=float, default=20.0, help="measuring window of each phase")
    ap.add_argument("--interval", type=float, default=0.05, help="pause between two status requests (s)")
    ap.add_argument("--warmup", type=float, default=3.0, help="subscriber connected this long before measuring")
    ap.add_argument("--settle", type=float, default=2.0, help="wait after the first ping before measuring")
    ap.add_argument("--stream", choices=("trade", "aggTrade"), default="aggTrade")
    ap.add_argument("--history-days", type=float, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-warm-history", action="store_true", help="the simulator does not warm its history")
    ap.add_argument("--after-warm", action="store_true", help="measure once the history warm-up is over")
    ap.add_argument("--subscriber", nargs=2, metavar=("WS_URL", "STREAMS_FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.subscriber:
        return subscriber_main(*args.subscriber, args.seconds, args.warmup)
    r = asyncio.run(run(args))
    sub = r["sub"]
    fps = sub["frames"] / sub["elapsed"] if sub["elapsed"] else 0.0
    print(
        f"exchangesim --universe {args.universe} --rate {args.rate:,.0f}: {r['symbols']} Binance symbols, "
        f"ping {r['ping_s']:.1f} s after spawn; {os.cpu_count()} cores; {args.seconds:g} s per phase, "
        f"a status request every {args.interval * 1000:.0f} ms"
    )
    if r["warm_s"] is not None:
        print(f"measured after the history warm-up, over {r['warm_s']:.0f} s after spawn")
    print("/_sim/status latency (ms) and the clock's lag")
    print(
        f"{'phase':<22} {'n':>5} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'lag max':>8} {'emitted/s':>11} "
        f"{'frames/s':>10}"
    )
    print(row("no subscriber", r["baseline"], "-"))
    print(row(f"1 socket, {sub['streams']} @{args.stream}"[:22], r["loaded"], f"{fps:,.0f}"))
    print(f"subscriber: {sub['frames']:,} frames in {sub['elapsed']:.1f} s, {sub['gaps']} id gaps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
