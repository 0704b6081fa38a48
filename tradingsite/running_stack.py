"""How a second terminal finds the stack that ``make run`` started.

While ``make run`` (or ``make demo``) runs, it publishes where its parts are in ``<dev stack dir>/stack.json``:
MongoDB and Redis, the exchanges' URLs (the simulator's when it fell back to it) and ``MARKET_SIMULATED``.
``manage.py`` reads that file before Django's settings, so ``backfill``, ``backtest``, ``seed_instruments``,
``feed``... in another terminal talk to the same database, Redis and exchanges. A variable set in that
terminal's environment wins over the file. The file is removed when ``make run`` stops, and ignored when
the process that wrote it is gone. Nothing here imports Django.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

STATE_FILE = "stack.json"
# What a running stack publishes: where its services and exchanges are. Never credentials of an exchange.
PUBLISHED = (
    "MONGODB_URI",
    "MONGODB_DB",
    "REDIS_URL",
    "BINANCE_REST_URL",
    "BINANCE_WS_URL",
    "BINANCE_DATA_URL",
    "COINBASE_REST_URL",
    "COINBASE_WS_URL",
    "KRAKEN_REST_URL",
    "KRAKEN_WS_URL",
    "MARKET_SIMULATED",
)


def stack_dir(root: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """Where the dev stack keeps mongod's and Redis's data and the running stack's state: ``DEV_STACK_DIR``,
    else ``<root>/.data``."""
    return Path(environ.get("DEV_STACK_DIR") or root / ".data")


@contextlib.contextmanager
def published(directory: Path, env: Mapping[str, str]) -> Iterator[Path]:
    """Publish the ``PUBLISHED`` variables of ``env`` (those set) as this process's stack for as long as the
    block runs; yields the file. It is readable by this user only (a MONGODB_URI may hold a password). Another
    stack published here and still running when the block ends is published again."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATE_FILE
    earlier = _read(path)
    _write(path, {"pid": os.getpid(), "env": {k: env[k] for k in PUBLISHED if env.get(k)}})
    try:
        yield path
    finally:
        if _read(path).get("pid") == os.getpid():  # not a later make run's file
            if _alive(earlier.get("pid")):
                _write(path, earlier)
            else:
                path.unlink(missing_ok=True)


def running_stack_env(directory: Path) -> dict[str, str]:
    """The variables the running stack published under ``directory``; {} when there is none, or the process
    that published them has ended."""
    state = _read(directory / STATE_FILE)
    env = state.get("env")
    if not _alive(state.get("pid")) or not isinstance(env, dict):
        return {}
    return {k: str(v) for k, v in env.items() if k in PUBLISHED and v}


def adopted(environ: Mapping[str, str], stack_env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``stack_env`` that ``environ`` does not set (an empty value counts as unset): what a
    command takes from the running stack, its own environment winning."""
    return {k: v for k, v in stack_env.items() if not environ.get(k)}


def _alive(pid: object) -> bool:
    """Whether ``pid`` names a process that runs (one of this user's)."""
    try:
        number = int(pid)  # type: ignore[call-overload]
        os.kill(number, 0)  # 0 and negative numbers would name process groups
    except (OSError, ValueError, TypeError):
        return False
    return number > 0


def _write(path: Path, state: dict[str, object]) -> None:
    """``state`` into ``path`` as JSON, atomically, readable by this user only."""
    part = path.with_name(f".{path.name}.{os.getpid()}")
    with os.fdopen(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump(state, out, indent=1)
    part.replace(path)


def _read(path: Path) -> dict[str, object]:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}
