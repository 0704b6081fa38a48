"""``make run`` and ``make demo``: the dev stack, migrations, default instruments, then the site on Daphne.

``make run`` talks to live Binance; when Binance cannot be reached it says so and runs the local
exchange simulator instead (its data is simulated, and labelled so). ``make demo`` runs the
simulator on purpose. Ctrl+C stops everything this started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from markets.venues import DEFAULT_INSTRUMENTS
from tradingsite.devstack import DevStackError, dev_services

ROOT = Path(__file__).resolve().parent.parent


def binance_unreachable(rest_url: str) -> str | None:
    """Why ``rest_url`` does not answer a ping, or None when it does."""
    try:
        requests.get(f"{rest_url.rstrip('/')}/api/v3/ping", timeout=4).raise_for_status()
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def simulator(port: int) -> Iterator[dict[str, str]]:
    """The exchange simulator in a thread of this process; yields the Binance URLs pointing at it."""
    from exchangesim.config import SimConfig
    from exchangesim.server import running_in_thread

    symbols = tuple(s for s, _, _ in DEFAULT_INSTRUMENTS["binance"])
    config = SimConfig(host="127.0.0.1", port=port, symbols=symbols, explicit_symbols=True)
    with running_in_thread(config) as sim:
        print(f"exchange simulator (simulated market data) on {sim.url}", flush=True)
        yield {"BINANCE_REST_URL": sim.url, "BINANCE_WS_URL": sim.ws_url}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tradingsite.run", description=__doc__)
    p.add_argument("--demo", action="store_true", help="run against the local exchange simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--sim-port", type=int, default=9900)
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's stop cleans up like Ctrl+C

    with contextlib.ExitStack() as stack:
        try:
            env = dict(os.environ) | stack.enter_context(dev_services(ROOT / ".data"))
        except DevStackError as exc:
            print(f"make run: {exc}", file=sys.stderr)
            return 2
        rest_url = env.get("BINANCE_REST_URL", "https://api.binance.com")
        if not args.demo and (why := binance_unreachable(rest_url)):
            print(f"Binance cannot be reached at {rest_url} ({why}).\n"
                  "Running against the local exchange simulator instead: prices are SIMULATED.", flush=True)
            args.demo = True
        if args.demo:
            env |= stack.enter_context(simulator(args.sim_port))
        manage = [sys.executable, str(ROOT / "manage.py")]
        for step in (["migrate", "--noinput", "-v", "0"], ["seed_instruments"]):
            if subprocess.run([*manage, *step], env=env, cwd=ROOT, check=False).returncode:
                print(f"make run: manage.py {' '.join(step)} failed (see above)", file=sys.stderr)
                return 1
        symbols = ",".join(s for s, _, _ in DEFAULT_INSTRUMENTS["binance"])
        print(f"\n  site   http://{args.host}:{args.port}/admin/   API http://{args.host}:{args.port}/api/docs/\n"
              f"  data   {'SIMULATED' if args.demo else 'live Binance'} ({env.get('BINANCE_REST_URL', rest_url)})\n"
              f"  feed   {symbols}; drop it for 10 s from another terminal:\n"
              "         .venv/bin/python manage.py feed drop --seconds 10   (then: manage.py feed status)\n"
              "  staff  .venv/bin/python manage.py createsuperuser, then log in at /admin/\n"
              "  Ctrl+C stops everything\n", flush=True)
        processes = [
            subprocess.Popen([sys.executable, "-m", "daphne", "-b", args.host, "-p", str(args.port),
                              "tradingsite.asgi:application"], env=env, cwd=ROOT),
            subprocess.Popen([*manage, "stream", "--symbols", symbols], env=env, cwd=ROOT),
        ]
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
            print("make run: a process ended; stopping the rest", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            for p in processes:
                if p.poll() is None:
                    p.terminate()
            for p in processes:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
