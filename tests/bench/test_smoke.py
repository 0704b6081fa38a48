"""Every script in bench/ runs to the end at a tiny size and prints its table, so none can stop working unnoticed.

Only that is asserted (exit status 0 and the table's heading and a row): figures from a seconds-long run on a
shared machine mean nothing. Each script starts what it needs itself (mongod, redis-server, the simulator,
Daphne, ``manage.py stream``) in a temporary folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"

# script -> (tiny-size arguments, texts its output must hold: the table's heading and a row of it)
RUNS: dict[str, tuple[list[str], list[str]]] = {
    "signals.py": (
        ["--symbols", "2", "--warm", "1000", "--candles", "20"],
        ["per candle, one symbol", "evaluate (indicators + rules)", "p99 per symbol"],
    ),
    "ingest.py": (["--ticks", "2000", "--rounds", "1"], ["ticks per round: 2,000", "ticks_ingest (new ticks)"]),
    "exchangesim_throughput.py": (
        ["--rates", "2000", "--seconds", "1", "--warmup", "0.5"],
        ["asked/s", "     2,000 ", "sustained trades/s received by one client"],
    ),
    "stream_ingest.py": (
        ["--rates", "1000", "--seconds", "2", "--warmup", "5"],
        ["raw/s asked", "       1,000 "],
    ),
    "backfill_budget.py": (
        ["--seconds", "9", "--limit", "40", "--window", "4", "--hours", "1"],
        ["simulator weight limit 40 per 4 s", "full windows:", "429s: "],
    ),
    "feed_latency.py": (
        [
            *("--rate", "300", "--agg-rate", "0", "--warmup", "8", "--seconds", "4"),
            *("--ingest-rates", "1000", "--ingest-seconds", "2", "--ingest-warmup", "5"),
        ],
        ["event time -> client, every trade carried", "raw/s asked", "       1,000 "],
    ),
}
SLOW = {"stream_ingest.py", "feed_latency.py"}  # mongod, redis-server, the simulator and a stream each time


# scripts whose smoke run lives in a file of its own (more than one shape to run)
OWN_FILE = {
    "tick_storage.py": "test_tick_storage_smoke.py",
    "sim_status.py": "test_sim_status_smoke.py",
    "universe.py": "test_universe_smoke.py",
    "history_api.py": "test_history_api_smoke.py",
}


def test_every_bench_script_has_a_smoke_run() -> None:
    """A script added to bench/ gets its smoke run here too, or in a file of its own named in ``OWN_FILE``."""
    assert sorted(p.name for p in BENCH.glob("*.py")) == sorted([*RUNS, *OWN_FILE])
    here = Path(__file__).parent
    assert all((here / test).is_file() for test in OWN_FILE.values())


@pytest.mark.parametrize(
    "script", [pytest.param(s, marks=[pytest.mark.slow] if s in SLOW else []) for s in sorted(RUNS)]
)
def test_bench_script_runs_to_the_end(script: str) -> None:
    """The script exits 0 and prints its table."""
    args, expected = RUNS[script]
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}"
    missing = [text for text in expected if text not in done.stdout]
    assert not missing, f"{script} printed no {missing}:\n{done.stdout}"
