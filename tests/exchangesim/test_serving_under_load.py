"""History work never stops the simulator from serving: ``python -m exchangesim`` as a process, at load-mode rates,
answers ``/_sim/status`` within a bound of its own unloaded answers while a cold klines request that aggregates a
thousand minutes of history is in flight and a stream is connected, holds its memory bounded meanwhile, answers
``/api/v3/ping`` soon after start while it warms its history at 30,000 trades/s, and stops within seconds of
SIGTERM in both cases. The bounds are generous (a loaded CI machine must not flake); the printed figures are the
measurement."""

from __future__ import annotations

import asyncio
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[2]
MINUTE = 60_000


def spawn(log: Path, args: tuple[str, ...]) -> subprocess.Popen[str]:
    """``python -m exchangesim`` on a free port with ``args``, its log to ``log``."""
    with log.open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "exchangesim", "--port", "0", "--symbols", "BTCUSDT", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


@asynccontextmanager
async def simulator(log: Path, *args: str) -> AsyncIterator[tuple[subprocess.Popen[str], str, float]]:
    """The simulator as a process: the process, its base URL and when it was spawned (monotonic); killed at the
    end if a test left it running."""
    spawned = time.monotonic()
    proc = spawn(log, args)
    try:
        first = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 60)  # type: ignore[union-attr]
        assert first.startswith("exchange simulator on http://"), f"{first!r}\n{tail(log)}"
        yield proc, first.split()[3], spawned
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


async def status_seconds(http: aiohttp.ClientSession, url: str) -> float:
    """How long one GET /_sim/status took to answer (it must answer, within 10 s)."""
    t0 = time.monotonic()
    async with http.get(f"{url}/_sim/status", timeout=aiohttp.ClientTimeout(total=10)) as r:
        assert r.status == 200
        await r.read()
    return time.monotonic() - t0


async def drain(ws: aiohttp.ClientWebSocketResponse) -> int:
    """Read a socket until it ends; how many frames came."""
    frames = 0
    async for _ in ws:
        frames += 1
    return frames


def stop_seconds(proc: subprocess.Popen[str]) -> float:
    """Send SIGTERM and wait for the process to end (at most 30 s): how long that took."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    return time.monotonic() - t0


async def test_status_answers_while_a_cold_klines_request_aggregates_history(tmp_path: Path) -> None:
    """At 5,000 trades/s with a day of history and an aggTrade stream connected, a klines request for 1,000 cold
    one-minute candles (300 million trades to aggregate) is in flight while /_sim/status is asked repeatedly: every
    answer comes within a second and their median within a generous bound of the unloaded median, the clock is
    never held up a second, the resident memory stays bounded, and SIGTERM stops the process within 10 s."""
    log = tmp_path / "sim.log"
    async with (
        simulator(log, "--rate", "5000", "--history-days", "1", "--no-warm-history") as (proc, url, _),
        aiohttp.ClientSession() as http,
    ):
        ws = await http.ws_connect(f"{url.replace('http', 'ws')}/ws/btcusdt@aggTrade", autoping=True)
        reader = asyncio.create_task(drain(ws))
        unloaded = [await status_seconds(http, url) for _ in range(10)]
        async with http.get(f"{url}/_sim/status") as r:
            started = (await r.json())["started_ms"]
        # A day of history at least: the thousand minutes ending an hour before the start are all history.
        params = {"symbol": "BTCUSDT", "interval": "1m", "limit": "1000", "endTime": str(started - 60 * MINUTE)}
        heavy = asyncio.create_task(http.get(f"{url}/api/v3/klines", params=params))
        loaded: list[float] = []
        sampling_until = time.monotonic() + 3.0
        while time.monotonic() < sampling_until:
            loaded.append(await status_seconds(http, url))
        rss_mb = psutil.Process(proc.pid).memory_info().rss / 2**20
        async with http.get(f"{url}/_sim/status") as r:
            lag_ms = (await r.json())["loop_lag_max_ms"]
        assert not heavy.done(), "the klines request is still being built while the status is asked"
        print(
            f"status unloaded median {statistics.median(unloaded) * 1000:.1f} ms; with the klines request in flight "
            f"median {statistics.median(loaded) * 1000:.1f} ms, max {max(loaded) * 1000:.1f} ms over {len(loaded)} "
            f"requests; clock late at most {lag_ms:.0f} ms; resident {rss_mb:.0f} MB"
        )
        assert max(loaded) < 1.0, loaded
        assert statistics.median(loaded) < max(0.25, 20 * statistics.median(unloaded)), (unloaded, loaded)
        assert lag_ms < 1000
        assert rss_mb < 1000, "generated blocks are held within the cache's bound"
        took = stop_seconds(proc)
        print(f"stopped {took:.1f} s after SIGTERM")
        assert proc.returncode == 0, tail(log)
        assert took < 10
        assert await asyncio.wait_for(reader, 10) > 0, "the stream carried trades until the stop"
        heavy.cancel()
        await asyncio.gather(heavy, return_exceptions=True)


async def test_ping_soon_after_start_while_history_warms_at_30000_trades_a_second(tmp_path: Path) -> None:
    """Started at 30,000 trades/s with a day of history to warm (the CLI warms it by default), the simulator
    answers /api/v3/ping within 10 s of being spawned (3 s on an idle 2-core machine), answers /_sim/status
    quickly while an aggTrade stream is connected, and stops within 10 s of SIGTERM."""
    log = tmp_path / "sim.log"
    async with (
        simulator(log, "--rate", "30000", "--history-days", "1") as (proc, url, spawned),
        aiohttp.ClientSession() as http,
    ):
        async with http.get(f"{url}/api/v3/ping", timeout=aiohttp.ClientTimeout(total=10)) as r:
            assert r.status == 200
        ping_s = time.monotonic() - spawned
        ws = await http.ws_connect(f"{url.replace('http', 'ws')}/ws/btcusdt@aggTrade", autoping=True)
        reader = asyncio.create_task(drain(ws))
        streaming = [await status_seconds(http, url) for _ in range(20)]
        print(
            f"ping answered {ping_s:.1f} s after spawning; status with a stream connected and the history warming: "
            f"median {statistics.median(streaming) * 1000:.1f} ms, max {max(streaming) * 1000:.1f} ms"
        )
        assert ping_s < 10
        assert max(streaming) < 1.0, streaming
        took = stop_seconds(proc)
        print(f"stopped {took:.1f} s after SIGTERM")
        assert proc.returncode == 0, tail(log)
        assert took < 10
        await asyncio.wait_for(reader, 10)
