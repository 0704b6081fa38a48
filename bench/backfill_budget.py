"""REST trades backfill against the request-weight budget: what share of Binance's weight a backfill uses.

Starts its own mongod (in a temporary folder) and the simulator in a thread (one symbol, synthetic history), then
runs ``trades_backfill`` (REST only, aggTrades by id) over the simulator's history for ``--seconds`` and stops it.
The simulator's own accounting is read (its weight limiter, wrapped in-process): every request's weight is
counted in the window it arrived in, and every 429 is counted. Printed per window: the weight the simulator
counted and its share of the limit; then 429s, requests, trades/s. Partial windows (the first and the last) are
shown but marked; the figure that matters is the share in the full windows.

``--latency-ms`` delays every aggTrades answer on the simulator (a network round trip to Binance); ``--limit``
sets the simulator's weight limit (Binance: 6000 a minute) so that a fast local client is weight-bound;
``--window`` the simulator's window in seconds where the simulator supports it (Binance: 60).

    .venv/bin/python bench/backfill_budget.py [--seconds 130] [--limit 6000] [--latency-ms 0] [--window 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Enough(Exception):
    """Raised from the progress callback once the run has lasted long enough."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=130.0, help="how long the backfill runs (>= two windows)")
    p.add_argument("--limit", type=int, default=6000, help="the simulator's request-weight limit per window")
    p.add_argument("--window", type=int, default=60, help="the simulator's weight window, seconds")
    p.add_argument("--latency-ms", type=int, default=0, help="delay added to every aggTrades answer")
    p.add_argument("--rate", type=float, default=200.0, help="simulated trades per second of history")
    p.add_argument("--hours", type=float, default=12.0, help="hours of history to backfill (more than is reached)")
    args = p.parse_args()

    from exchangesim.config import SimConfig
    from exchangesim.faults import RestFault
    from exchangesim.server import running_in_thread
    from tradingsite.devstack import start_mongod

    days = args.hours / 24 + 0.05
    extra = {"weight_window_s": args.window} if args.window != 60 else {}
    config = SimConfig(
        port=0, symbols=("BTCUSDT",), rate=args.rate, history_days=days, weight_limit=args.limit, **extra
    )
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as tmp, running_in_thread(config) as sim:
        mongo = start_mongod(Path(tmp) / "mongo")
        try:
            if args.latency_ms:
                sim.faults.rest.append(
                    RestFault("binance", "/api/v3/aggTrades", None, 1_000_000, None, args.latency_ms)
                )
            run(sim, mongo.uri, args)
        finally:
            mongo.stop()


def run(sim: object, uri: str, args: argparse.Namespace) -> None:
    os.environ["MONGODB_URI"] = uri
    os.environ["BINANCE_REST_URL"] = sim.url  # type: ignore[attr-defined]
    os.environ["DJANGO_SETTINGS_MODULE"] = "tradingsite.settings"
    import io

    import django

    django.setup()
    from django.core.management import call_command

    from markets.backfill import trades_backfill
    from markets.venues import rest_adapter

    call_command("migrate", verbosity=0)
    call_command("seed_instruments", "--exchange", "binance", "--symbols", "BTCUSDT", stdout=io.StringIO())

    limiter = sim.venues["binance"].limiter  # type: ignore[attr-defined]
    window_ms = getattr(limiter, "window_ms", 60_000)
    windows: dict[int, int] = {}
    rejected = {"429": 0, "requests": 0}
    lock = threading.Lock()
    charge = limiter.charge

    def counted(client: str, weight: int, now_ms: int) -> int:
        w = now_ms // window_ms
        with lock:
            rejected["requests"] += 1
        try:
            used = charge(client, weight, now_ms)
        except Exception:
            with lock:
                rejected["429"] += 1
            raise
        with lock:
            windows[w] = max(windows.get(w, 0), used)
        return used

    limiter.charge = counted
    adapter = rest_adapter("binance")
    adapter.instruments(["BTCUSDT"])  # the client learns the simulator's limit, as a stream does at its start
    end = datetime.now(UTC) - timedelta(minutes=5)
    start = end - timedelta(hours=args.hours)
    trades = 0
    began = time.monotonic()

    def progress(n: int) -> None:
        nonlocal trades
        trades += n
        if time.monotonic() - began >= args.seconds:
            raise Enough

    try:
        trades_backfill(
            adapter=adapter,
            exchange="binance",
            symbol="BTCUSDT",
            start=start,
            end=end,
            progress=progress,
            candles=False,
        )
        print("the backfill ended before --seconds: widen --hours")
    except Enough:
        pass
    seconds = time.monotonic() - began
    adapter.close()
    limit = limiter.limit
    print(
        f"REST trades backfill, {seconds:.1f} s; simulator weight limit {limit} per {window_ms // 1000} s; "
        f"aggTrades answer delay {args.latency_ms} ms"
    )
    ordered = sorted(windows)
    full = []
    for i, w in enumerate(ordered):
        edge = i in (0, len(ordered) - 1)
        share = windows[w] / limit
        if not edge:
            full.append(share)
        print(f"  window {i:>3}: used {windows[w]:>6} = {share:6.1%}{'  (partial)' if edge else ''}")
    if full:
        print(f"full windows: {len(full)}, share of the budget min {min(full):.1%} mean {sum(full) / len(full):.1%}")
    else:
        print("no full window: run longer (--seconds)")
    print(
        f"429s: {rejected['429']}; requests: {rejected['requests']}; "
        f"trades: {trades:,} = {trades / seconds:,.0f} trades/s"
    )


if __name__ == "__main__":
    main()
