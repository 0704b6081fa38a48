"""A seconds-long run of bench/history_api.py, so that the history API bench cannot stop working unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARGS = ("--repeat", "3", "--warmup", "1", "--days", "2", "--ticks", "6000")


def test_every_row_is_printed() -> None:
    """Two days of candles, 6,000 ticks, three requests a row: the table and each of its five rows (only that:
    figures from so short a run on a shared machine mean nothing)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "history_api.py"), *ARGS],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    out = proc.stdout
    assert "against a bare pymongo read of the same documents" in out, out
    rows = (
        "candles 1m, 1 day",
        "candles 1h, 30 days",
        "candles 5m, 7 days",
        "ticks page of 1,000",
        "ticks page of 5,000",
    )
    for row in rows:
        assert any(line.startswith(row) and line.rstrip().endswith("x") for line in out.splitlines()), out
