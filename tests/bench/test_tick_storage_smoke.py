"""A seconds-long run of bench/tick_storage.py, so that the bytes-per-tick bench cannot stop working unnoticed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYOUTS = (
    "today",
    "today-3ix",
    "key",
    "clustered",
    "clu-full-str",
    "clu-short",
    "clu-short-doc",
    "clu-short-str",
    "clu-orm",
    "clu-lean",
    "clu-noix",
)


def bench(*args: str) -> str:
    """Run the bench with ``args``; its standard output, once it has exited 0."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "tick_storage.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_every_layout_and_compressor_prints_its_row() -> None:
    """A few hundred ticks (recorded ones when ../shared/data is there, the simulator's otherwise) in every
    layout with snappy, zstd and zstd on the indexes: one row each, the duplicate check passed."""
    out = bench("--ticks", "600")
    assert "bytes per stored tick" in out
    rows = [line.split()[:2] for line in out.splitlines()]
    for layout in LAYOUTS:
        for compressor in ("snappy", "zstd", "zstd+ix"):
            assert [layout, compressor] in rows, out


def test_the_simulator_source_runs() -> None:
    """The fallback without recorded data: the seeded simulator's trades, read over its REST API."""
    out = bench("--ticks", "300", "--source", "sim", "--layouts", "today,clu-short", "--compressors", "snappy")
    assert "the simulator's aggregate trades, seed 1" in out
    rows = [line.split()[:2] for line in out.splitlines()]
    assert ["today", "snappy"] in rows, out
    assert ["clu-short", "snappy"] in rows, out
