"""``python -m exchangesim``: run the exchange simulator until Ctrl+C."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from pathlib import Path

from .config import SimConfig
from .engine.replay import ReplayFormatError
from .server import VENUES, Simulator
from .symbols import UnknownSymbolError
from .universe import MAX_SIZE


def parse_args(argv: list[str] | None = None) -> SimConfig:
    p = argparse.ArgumentParser(prog="python -m exchangesim", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9900, help="0 picks a free port")
    p.add_argument("--symbols", default=None, help="comma-separated, default BTCUSDT,ETHUSDT")
    for venue in VENUES[1:]:  # Binance's are --symbols
        p.add_argument(
            f"--{venue.name}-symbols",
            default=None,
            metavar="LIST",
            help=f"comma-separated {venue.name} symbols, default {','.join(venue.default_symbols)} "
            f"(none with --replay); an empty string lists none",
        )
    p.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="synthetic trades/s per Binance symbol (other venues trade their share of it); with --universe, "
        "the total of all Binance's synthetic symbols together (Coinbase trades half of it, Kraken 0.3)",
    )
    p.add_argument(
        "--universe",
        type=int,
        default=0,
        metavar="N",
        help=f"add N synthetic symbols (1 to {MAX_SIZE}) to every venue, named from --seed in each venue's format: "
        "a few busy, most quiet, every fourth past the busiest tenth silent for 2-10 minutes an hour; "
        "the venue's listed symbols rank first (see exchangesim/universe.py)",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--replay",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="capture (.gz) or data.binance.vision CSV/zip files to replay instead of synthetic",
    )
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (2.0 = twice real time)")
    p.add_argument("--api-key", default=os.environ.get("SIM_API_KEY"))
    p.add_argument("--api-secret", default=os.environ.get("SIM_API_SECRET"))
    p.add_argument(
        "--history-days",
        type=float,
        default=7.0,
        help="days of synthetic history before today 00:00 UTC (whole days: each is a data.binance.vision file); "
        "with --rate 0.1, --history-days 4 is about 35,000 trades a symbol",
    )
    p.add_argument(
        "--vision-delay",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="data.binance.vision files of a UTC day (or month) appear this long after it ends (default 600)",
    )
    p.add_argument("--ping-interval", type=float, default=20.0)
    p.add_argument("--pong-timeout", type=float, default=60.0)
    p.add_argument("--max-connection-age", type=float, default=24 * 3600.0)
    p.add_argument(
        "--no-warm-history",
        action="store_true",
        help="do not aggregate the synthetic history in the background at start",
    )
    p.add_argument("--log-level", default="INFO")
    a = p.parse_args(argv)
    if bool(a.api_key) != bool(a.api_secret):
        p.error("--api-key and --api-secret go together")
    if a.rate < 0 or a.speed <= 0 or a.history_days < 0 or a.vision_delay < 0:
        p.error("--rate, --history-days and --vision-delay must be >= 0 and --speed > 0")
    if not 0 <= a.universe <= MAX_SIZE:
        p.error(f"--universe must be from 0 to {MAX_SIZE}, got {a.universe}")
    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    symbols = tuple(s.strip().upper() for s in (a.symbols or "BTCUSDT,ETHUSDT").split(",") if s.strip())
    try:
        venue_symbols = _venue_symbols(a)
    except UnknownSymbolError as exc:
        p.error(str(exc))
    return SimConfig(
        host=a.host,
        port=a.port,
        symbols=symbols,
        venue_symbols=venue_symbols,
        rate=a.rate,
        seed=a.seed,
        replay=tuple(a.replay),
        speed=a.speed,
        api_keys={a.api_key: a.api_secret} if a.api_key else {},
        history_days=a.history_days,
        ping_interval=a.ping_interval,
        pong_timeout=a.pong_timeout,
        max_connection_age=a.max_connection_age,
        explicit_symbols=a.symbols is not None,
        warm_history=not a.no_warm_history,
        universe=a.universe,
        vision_delay=a.vision_delay,
    )


def _venue_symbols(a: argparse.Namespace) -> dict[str, tuple[str, ...]]:
    """``--<venue>-symbols`` of every venue but Binance, checked by the venue."""
    out = {}
    for venue in VENUES[1:]:
        raw = getattr(a, f"{venue.name}_symbols")
        if raw is not None:
            out[venue.name] = tuple(venue.spec(s.strip()).symbol for s in raw.split(",") if s.strip())
    return out


async def serve(config: SimConfig) -> None:
    sim = Simulator(config)
    await sim.start()
    # What start built (a universe's tapes and history blocks: 130,000 objects) lives as long as the process: out of
    # the collector's way, a full collection takes a few ms instead of 80 ms of the event loop.
    gc.freeze()
    print(
        f"exchange simulator on {sim.url} (REST {sim.url}/api/v3, streams {sim.ws_url}/ws, "
        f"control {sim.url}/_sim/status); Ctrl+C stops it",
        flush=True,
    )
    for name, venue in sim.venues.items():
        if venue.prefix and sim.market.specs_of(name):
            ws_path = getattr(venue, "ws_path", "/ws")
            print(
                f"  {name}: REST {sim.venue_url(name)}, WebSocket {sim.venue_url(name, ws=True)}{ws_path}", flush=True
            )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        asyncio.run(serve(config))
    except (ReplayFormatError, UnknownSymbolError, OSError) as exc:
        print(f"exchangesim: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
