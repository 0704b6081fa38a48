"""A seconds-long run of bench/universe.py, so that the universe bench cannot stop working unnoticed: a small
universe streamed by 1 and 2 leased workers (short leases, so the partition settles in seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARGS = ("--universe", "12", "--rate", "200", "--workers", "1,2", "--seconds", "2", "--warmup", "1")
LEASES = ("--lease-seconds", "4", "--renew-seconds", "1", "--timeout", "90")


@pytest.mark.slow
def test_one_row_per_worker_count() -> None:
    """The bench exits 0 and prints its heading and one row for each worker count (figures are not asserted: a
    seconds-long run on a shared machine means nothing)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "universe.py"), *ARGS, *LEASES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    print(done.stdout)
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}"
    lines = done.stdout.splitlines()
    heading = next((i for i, line in enumerate(lines) if "stored/emitted" in line), None)
    assert heading is not None, done.stdout
    assert "lag ms p50/p99/max" in lines[heading]
    assert [line.split()[0] for line in lines[heading + 1 : heading + 3]] == ["1", "2"], done.stdout
