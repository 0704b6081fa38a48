"""A seconds-long run of bench/sim_status.py, so that the status-latency bench cannot stop working unnoticed.

Only that it runs to the end and prints both rows of its table is asserted: latencies from a seconds-long run on a
shared machine mean nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_both_phases_print_their_row() -> None:
    """A small universe: the baseline row, the row with a subscriber on every Binance symbol, and the subscriber's
    count of frames and id gaps (none: frames of one stream come in id order)."""
    args = ("--universe", "20", "--rate", "2000", "--seconds", "1.5", "--warmup", "0.5", "--settle", "0.2")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sim_status.py"), *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        check=False,
    )
    print(proc.stdout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "/_sim/status latency (ms)" in proc.stdout
    rows = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert {"no", "1"} <= rows, proc.stdout
    assert " 0 id gaps" in proc.stdout, proc.stdout
