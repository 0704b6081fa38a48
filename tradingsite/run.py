"""``make run`` and ``make demo``: the dev stack, migrations, default instruments, then the Procfile's processes
(Daphne, the stream, a Celery worker and beat) under honcho.

``make run`` talks to live Binance; when Binance cannot be reached it says so and runs the local
exchange simulator instead (its data is simulated, and labelled so). ``make demo`` runs the
simulator on purpose. Ctrl+C (or SIGTERM) stops everything this started.

The site listens on ``WEB_HOST``:``PORT`` (127.0.0.1:8000), the simulator on 127.0.0.1:``SIM_PORT`` (9900). Both
ports are checked, and held, before anything is printed or started. While it runs, where the stack is (databases,
exchange URLs) is published for ``manage.py`` in other terminals (tradingsite.running_stack).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import requests
from honcho.environ import parse_procfile

from markets.venues import DEFAULT_INSTRUMENTS
from tradingsite.devstack import DevStackError, dev_services
from tradingsite.env import ConfigError, load_env_file
from tradingsite.ports import PortError, hold_port, port_setting
from tradingsite.running_stack import published, stack_dir

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
SIM_SOCKETS = {"coinbase": "/ws", "kraken": "/v2"}  # where each venue's feed is, below its base URL
STOP_SECONDS = 30  # honcho itself kills what has not stopped 5 s after its SIGTERM
SIM_HOST = "127.0.0.1"  # the simulator serves this machine only


def binance_unreachable(rest_url: str) -> str | None:
    """Why ``rest_url`` does not answer a ping, or None when it does."""
    try:
        requests.get(f"{rest_url.rstrip('/')}/api/v3/ping", timeout=4).raise_for_status()
    except requests.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def simulator(port: int) -> Iterator[dict[str, str]]:
    """The exchange simulator in a thread of this process (Binance, Coinbase and Kraken over one market); yields
    the exchanges' URLs pointing at it, and the flag that labels the data simulated everywhere."""
    from exchangesim.config import SimConfig
    from exchangesim.server import running_in_thread

    symbols = tuple(s for s, _, _ in DEFAULT_INSTRUMENTS["binance"])
    config = SimConfig(host=SIM_HOST, port=port, symbols=symbols, explicit_symbols=True)
    with running_in_thread(config) as sim:
        print(f"exchange simulator (simulated market data) on {sim.url}", flush=True)
        env = {
            "BINANCE_REST_URL": sim.url,
            "BINANCE_WS_URL": sim.ws_url,
            "BINANCE_DATA_URL": sim.url,
            "MARKET_SIMULATED": "1",
        }
        for venue, socket_path in SIM_SOCKETS.items():
            if venue in sim.venues:
                env[f"{venue.upper()}_REST_URL"] = sim.venue_url(venue)
                env[f"{venue.upper()}_WS_URL"] = sim.venue_url(venue, ws=True) + socket_path
        yield env


def process_env(host: str) -> dict[str, str]:
    """What the Procfile's commands read besides the settings: this interpreter's ``python`` first on PATH,
    unbuffered output (honcho prints lines as they come) and the web host."""
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONUNBUFFERED": "1",
        "WEB_HOST": host,
    }


def banner(*, host: str, port: int, simulated: bool, rest_url: str, symbols: str) -> str:
    """Where everything is, and the two things to try first."""
    site = f"http://{_browsable(host)}:{port}"
    names = ", ".join(parse_procfile(PROCFILE.read_text()).processes)
    return (
        f"\n  live   {site}/   ({'SIMULATED prices' if simulated else 'live Binance prices'})\n"
        f"  admin  {site}/admin/   API docs {site}/api/docs/\n"
        f"  data   {'SIMULATED' if simulated else 'live Binance'} ({rest_url})\n"
        f"  feed   {symbols}; drop it for 10 s from another terminal:\n"
        "         .venv/bin/python manage.py feed drop --seconds 10   (then: manage.py feed status)\n"
        f"  staff  .venv/bin/python manage.py createsuperuser, then log in at {site}/admin/\n"
        "  more   any manage.py command in another terminal (backfill, backtest...) uses this stack's\n"
        "         databases and exchanges\n"
        f"  procs  {names} (Procfile, under honcho); Ctrl+C stops everything\n"
    )


def _browsable(host: str) -> str:
    """``host`` as a browser reaches it: this machine for a wildcard address, IPv6 in brackets."""
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tradingsite.run", description=__doc__)
    p.add_argument("--demo", action="store_true", help="run against the local exchange simulator")
    p.add_argument("--host", help="the site's address (default: WEB_HOST, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="the site's port (default: PORT, else 8000)")
    p.add_argument("--sim-port", type=int, help="the simulator's port (default: SIM_PORT, else 9900)")
    args = p.parse_args(argv)
    try:
        load_env_file(ROOT / ".env")  # PORT, SIM_PORT, WEB_HOST and the services may come from .env
        if args.port is None:
            args.port = port_setting(os.environ, "PORT", 8000)
        if args.sim_port is None:
            args.sim_port = port_setting(os.environ, "SIM_PORT", 9900)
    except (PortError, ConfigError) as exc:
        print(f"make {'demo' if args.demo else 'run'}: {exc}", file=sys.stderr)
        return 2
    args.host = args.host or os.environ.get("WEB_HOST", "").strip() or "127.0.0.1"
    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's stop cleans up like Ctrl+C
    try:
        return run(args)
    except KeyboardInterrupt:  # before the processes started (during migrate, say): what started is stopped
        return 0


def run(args: argparse.Namespace) -> int:
    """Everything ``main`` does once the arguments are read."""
    command = f"make {'demo' if args.demo else 'run'}"
    with contextlib.ExitStack() as stack:
        # The ports first: nothing is printed or started while one is taken.
        try:
            web_hold = stack.enter_context(
                hold_port(args.host, args.port, what="the site's", variable="PORT", retry=command)
            )
        except PortError as exc:
            print(f"{command}: {exc}", file=sys.stderr)
            return 2
        rest_url = os.environ.get("BINANCE_REST_URL", "https://api.binance.com")
        unreachable = None if args.demo else binance_unreachable(rest_url)
        simulated = bool(args.demo or unreachable)
        if simulated:
            try:
                sim_hold = stack.enter_context(
                    hold_port(SIM_HOST, args.sim_port, what="the simulator's", variable="SIM_PORT", retry=command)
                )
            except PortError as exc:
                why = f"Binance cannot be reached at {rest_url} ({unreachable}), and " if unreachable else ""
                print(f"{command}: {why}{exc}", file=sys.stderr)
                return 2
        if unreachable:
            print(
                f"Binance cannot be reached at {rest_url} ({unreachable}).\n"
                "Running against the local exchange simulator instead: prices are SIMULATED.",
                flush=True,
            )
        data = stack_dir(ROOT)
        try:
            env = dict(os.environ) | stack.enter_context(dev_services(data))
        except DevStackError as exc:
            print(f"{command}: {exc}", file=sys.stderr)
            return 2
        if simulated:
            sim_hold.release()  # the simulator binds it now
            env |= stack.enter_context(simulator(args.sim_port))
        stack.enter_context(published(data, env))
        manage = [sys.executable, str(ROOT / "manage.py")]
        for step in (["migrate", "--noinput", "-v", "0"], ["seed_instruments", "--exchange", "all"]):
            if subprocess.run([*manage, *step], env=env, cwd=ROOT, check=False).returncode:
                print(f"{command}: manage.py {' '.join(step)} failed (see above)", file=sys.stderr)
                return 1
        symbols = "; ".join(f"{e} {', '.join(s for s, _, _ in d)}" for e, d in DEFAULT_INSTRUMENTS.items())
        env |= process_env(args.host)
        print(
            banner(
                host=args.host,
                port=args.port,
                simulated=simulated,
                rest_url=env.get("BINANCE_REST_URL", rest_url),
                symbols=symbols,
            ),
            flush=True,
        )
        web_hold.release()  # Daphne binds it now
        return supervise(env, args.port)


def supervise(env: dict[str, str], port: int) -> int:
    """Run the Procfile under honcho until one process ends (honcho then stops the others; 1 is returned) or
    this process is interrupted (0). Either way honcho and everything it started have exited on return."""
    # --env /dev/null: the environment is the one built here, not a .env file's.
    honcho = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "honcho",
            "start",
            "--procfile",
            str(PROCFILE),
            "--app-root",
            str(ROOT),
            "--env",
            os.devnull,
            "--port",
            str(port),
        ],
        env=env,
        cwd=ROOT,
    )
    try:
        code = honcho.wait()
        print(f"make run: a process ended (honcho exit code {code}); the others were stopped", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(honcho)


def _stop(honcho: subprocess.Popen[bytes]) -> None:
    """Have honcho stop its processes (SIGTERM to each, SIGKILL 5 s later) and wait for it. Further Ctrl+C or
    SIGTERM are ignored meanwhile: honcho got the terminal's Ctrl+C too and is already on it."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    if honcho.poll() is None:
        honcho.send_signal(signal.SIGTERM)
    try:
        honcho.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        print(f"make run: honcho did not stop within {STOP_SECONDS} s; killing it", file=sys.stderr)
        honcho.kill()
        honcho.wait()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
