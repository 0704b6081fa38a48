"""A second terminal finds the running stack: ``manage.py`` takes the databases and exchange URLs that ``make run``
published, its own environment winning, and ignores what a process that has ended left behind."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pymongo import MongoClient

from exchangesim.server import Simulator
from tradingsite.devstack import Service
from tradingsite.running_stack import STATE_FILE, adopted, published, running_stack_env, stack_dir

ROOT = Path(__file__).resolve().parents[2]


def second_terminal(stack: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh terminal in this checkout: nothing of the suite's, only ``extra``."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(stack), "DEV_STACK_DIR": str(stack), **extra}


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_stack_dir_is_dot_data_unless_dev_stack_dir_says(tmp_path: Path) -> None:
    """The dev stack's folder is ``.data`` in the checkout, or ``DEV_STACK_DIR``."""
    assert stack_dir(ROOT, {}) == ROOT / ".data"
    assert stack_dir(ROOT, {"DEV_STACK_DIR": str(tmp_path)}) == tmp_path


def test_published_while_running_and_removed_after(tmp_path: Path) -> None:
    """Only the stack's whereabouts are published (no API key), readable by this user only, for as long as the
    block runs; a command's own variables win over them, an empty one counting as unset."""
    env = {
        "MONGODB_URI": "mongodb://127.0.0.1:1/?replicaSet=rs0",
        "REDIS_URL": "redis://127.0.0.1:2/0",
        "BINANCE_REST_URL": "http://127.0.0.1:3",
        "BINANCE_API_SECRET": "never-published",
        "MARKET_SIMULATED": "1",
        "PATH": "/usr/bin",
    }
    with published(tmp_path, env) as path:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert "never-published" not in path.read_text()
        found = running_stack_env(tmp_path)
        assert found == {k: env[k] for k in ("MONGODB_URI", "REDIS_URL", "BINANCE_REST_URL", "MARKET_SIMULATED")}
        assert adopted({"BINANCE_REST_URL": "http://mine", "REDIS_URL": ""}, found) == {
            "MONGODB_URI": env["MONGODB_URI"],
            "REDIS_URL": env["REDIS_URL"],
            "MARKET_SIMULATED": "1",
        }
    assert not (tmp_path / STATE_FILE).exists()
    assert running_stack_env(tmp_path) == {}


def test_a_stack_whose_process_ended_is_ignored(tmp_path: Path) -> None:
    """A state file left by a process that is gone (killed, say) points nowhere: nothing is taken from it."""
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    state = {"pid": int(ended.stdout), "env": {"BINANCE_REST_URL": "http://127.0.0.1:3"}}
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    assert running_stack_env(tmp_path) == {}
    for pid in (0, -1, "x"):  # never a process group, never an error
        (tmp_path / STATE_FILE).write_text(json.dumps(state | {"pid": pid}))
        assert running_stack_env(tmp_path) == {}
    (tmp_path / STATE_FILE).write_text("{not json")
    assert running_stack_env(tmp_path) == {}


def test_a_stack_published_over_another_running_one_gives_it_back(tmp_path: Path) -> None:
    """A second make run from the same checkout publishes its stack while it runs; when it stops, the first
    one's (still running) is what a command finds again."""
    first = {"pid": os.getppid(), "env": {"BINANCE_REST_URL": "http://127.0.0.1:3"}}  # a process that runs
    (tmp_path / STATE_FILE).write_text(json.dumps(first))
    with published(tmp_path, {"BINANCE_REST_URL": "http://127.0.0.1:4"}):
        assert running_stack_env(tmp_path) == {"BINANCE_REST_URL": "http://127.0.0.1:4"}
    assert running_stack_env(tmp_path) == {"BINANCE_REST_URL": "http://127.0.0.1:3"}


def test_a_second_terminal_sees_the_simulator_unless_told_otherwise(
    dev_stack: dict[str, Service], sim_thread: Simulator, tmp_path: Path
) -> None:
    """With a running stack's state in place, a manage.py command in a clean environment has the stack's
    simulator URLs in its settings; a URL set in that environment wins."""
    stack = {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": dev_stack["redis"].uri,
        "BINANCE_REST_URL": sim_thread.url,
        "BINANCE_WS_URL": sim_thread.ws_url,
        "COINBASE_REST_URL": sim_thread.venue_url("coinbase"),
        "MARKET_SIMULATED": "1",
    }
    show = "from django.conf import settings as s; print(s.BINANCE_REST_URL, s.COINBASE_REST_URL, s.MARKET_SIMULATED)"
    with published(tmp_path, stack):
        seen = manage(second_terminal(tmp_path), "shell", "-v", "0", "-c", show)
        assert seen.returncode == 0, seen.stderr
        assert seen.stdout.split() == [sim_thread.url, sim_thread.venue_url("coinbase"), "True"]
        assert f"using the exchange simulator of the running make run ({sim_thread.url})" in seen.stderr
        own = manage(second_terminal(tmp_path, BINANCE_REST_URL="http://127.0.0.1:9"), "shell", "-v", "0", "-c", show)
        assert own.returncode == 0, own.stderr
        assert own.stdout.split() == ["http://127.0.0.1:9", sim_thread.venue_url("coinbase"), "True"]
    after = manage(
        second_terminal(tmp_path, MONGODB_URI=stack["MONGODB_URI"], REDIS_URL=stack["REDIS_URL"]),
        "shell",
        "-v",
        "0",
        "-c",
        show,
    )
    assert after.returncode == 0, after.stderr
    assert after.stdout.split() == ["https://api.binance.com", "https://api.exchange.coinbase.com", "False"]


@pytest.mark.slow
def test_backfill_in_a_second_terminal_stores_the_simulators_trades(
    dev_stack: dict[str, Service], sim_thread: Simulator, tmp_path: Path
) -> None:
    """``manage.py migrate`` and ``manage.py backfill`` in a clean environment work against the running stack's
    database and simulator: every trade of the range is stored, once."""
    stack = {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "MONGODB_DB": "second_terminal",
        "REDIS_URL": dev_stack["redis"].uri,
        "BINANCE_REST_URL": sim_thread.url,
        "BINANCE_WS_URL": sim_thread.ws_url,
        "MARKET_SIMULATED": "1",
    }
    with published(tmp_path, stack):
        migrated = manage(second_terminal(tmp_path), "migrate", "--noinput", "-v", "0")
        assert migrated.returncode == 0, migrated.stderr
        args = ("backfill", "--what", "trades", "--symbol", "BTCUSDT", "--start", "12m ago", "--end", "10m ago")
        done = manage(second_terminal(tmp_path), *args, "--no-progress")
    assert done.returncode == 0, done.stderr
    figures = dict(re.findall(r"^\s+(in range|newly stored|still missing)\s+([\d,]+)", done.stdout, re.M))
    in_range, stored = int(figures["in range"].replace(",", "")), int(figures["newly stored"].replace(",", ""))
    assert in_range > 0
    assert stored == in_range
    assert figures["still missing"] == "0"
    from markets.models import Tick

    client: MongoClient = MongoClient(dev_stack["mongo"].uri)
    try:
        ticks = client["second_terminal"][Tick._meta.db_table]
        assert ticks.count_documents({"exchange": "binance", "symbol": "BTCUSDT", "source": "rest"}) == in_range
    finally:
        client.close()
