"""``manage.py backfill --what trades`` over three whole UTC days and an hour either side: the days from the
simulator's data.binance.vision files, the hours from its REST by id. The stored trades equal ``/_sim/truth`` (none
missing, none twice), and then the same range backfilled by REST alone: both rates printed (not asserted: against
the simulator on this machine REST pages four at a time with no network between, and the two rates are within a
factor of two of each other either way), and the files path sent at most a tenth of the REST requests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from exchangesim.server import Simulator, running_in_thread
from markets.models import Candle, Tick
from markets.store import collection
from tests.conftest import sim_config
from tests.e2e.conftest import ROOT, manage_env
from tradingsite.devstack import Service

SYMBOL = "BTCUSDT"
RATE = 0.5  # raw trades a second: about 30,000 aggregate trades a day
Trade = tuple[int, Decimal, Decimal, str, int]  # id, price, qty, taker side, exchange time (ms)


def at(day: date, hours: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hours)


def truth(sim: Simulator, start: datetime, end: datetime) -> list[Trade]:
    """The simulator's aggregate trades with exchange time in ``[start, end)``."""
    params = {"symbol": SYMBOL, "kind": "aggTrades", "start_ms": int(start.timestamp() * 1000)}
    params["end_ms"] = int(end.timestamp() * 1000) - 1
    resp = requests.get(f"{sim.url}/_sim/truth", timeout=120, params=params)
    resp.raise_for_status()
    rows = (json.loads(line) for line in resp.text.splitlines() if line)
    return [(r["a"], Decimal(r["p"]), Decimal(r["q"]), "sell" if r["m"] else "buy", r["T"]) for r in rows]


def stored() -> list[Trade]:
    docs = collection(Tick).find({"symbol": SYMBOL}, {"_id": 0}).sort("trade_id", 1)
    return [
        (
            int(d["trade_id"]),
            d["price"].to_decimal(),
            d["qty"].to_decimal(),
            d["taker_side"],
            int(d["ts"].replace(tzinfo=UTC).timestamp() * 1000),
        )
        for d in docs
    ]


def rest_requests(sim: Simulator) -> int:
    """The REST requests the simulator's Binance has answered (its bulk files are another host's, not counted)."""
    counts = requests.get(f"{sim.url}/_sim/status", timeout=10).json()["venues"]["binance"]["requests"]
    return sum(n for path, n in counts.items() if path.startswith("/api/"))


def backfill(env: dict[str, str], start: datetime, end: datetime, source: str) -> dict[str, Any]:
    """``manage.py backfill`` in its own process; its summary's figures, the trades a second and the text."""
    args = ["--what", "trades", "--symbol", SYMBOL, "--start", start.isoformat(), "--end", end.isoformat()]
    done = subprocess.run(
        [sys.executable, "manage.py", "backfill", *args, "--source", source, "--no-progress"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures: dict[str, Any] = {"text": done.stdout}
    for line in done.stdout.splitlines()[1:]:
        label, _, rest = line.strip().partition("  ")
        figures[label.strip()] = int(rest.split()[0].replace(",", ""))
    rate = re.search(r"^  rate .*\(([\d,]+) in ([\d.]+) s, ([\d.]+) s of it building candles\)$", done.stdout, re.M)
    assert rate, done.stdout
    trades, seconds, candles = int(rate[1].replace(",", "")), float(rate[2]), float(rate[3])
    figures |= {"trades": trades, "seconds": seconds, "candles_s": candles}
    figures["per_second"] = trades / max(seconds, 0.001)
    figures["fetch_per_second"] = trades / max(seconds - candles, 0.001)  # the trades alone, without the candles
    return figures


def assert_exact(sim: Simulator, want: list[Trade], got: dict[str, Any], minutes: int) -> None:
    """The stored trades are the truth's: none missing, none twice, the same values; every minute has its candle."""
    have = stored()
    ids = [t[0] for t in have]
    missing, doubled = len({t[0] for t in want} - set(ids)), len(ids) - len(set(ids))
    assert (missing, doubled) == (0, 0)
    assert ids == list(range(want[0][0], want[-1][0] + 1))
    assert have == want
    assert (got["newly stored"], got["still missing"], got["1m candles"]) == (len(want), 0, minutes)
    assert collection(Candle).count_documents({"symbol": SYMBOL, "interval": "1m"}) >= minutes


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_three_days_from_bulk_files_and_rest_are_exact_with_a_tenth_of_rest_alones_requests(
    dev_stack: dict[str, Service],
) -> None:
    config = sim_config(symbols=(SYMBOL,), rate=RATE, history_days=5.0, vision_delay=0)
    with running_in_thread(config) as sim:
        env = manage_env(sim, dev_stack, BINANCE_DATA_URL=sim.url)
        first_day = datetime.now(UTC).date() - timedelta(days=4)  # three whole days, all published and in history
        start, end = at(first_day, -1), at(first_day, 3 * 24 + 1)
        minutes = int((end - start).total_seconds()) // 60
        want = truth(sim, start, end)
        assert want

        began, requests_before = time.monotonic(), rest_requests(sim)
        files = backfill(env, start, end, "auto")
        files_requests = rest_requests(sim) - requests_before
        print(files["text"])
        assert_exact(sim, want, files, minutes)
        assert files["from files"] + files["fetched"] == len(want)
        assert files["from files"] == len(truth(sim, at(first_day), at(first_day, 72)))

        collection(Tick).delete_many({"symbol": SYMBOL})
        collection(Candle).delete_many({"symbol": SYMBOL})
        requests_before = rest_requests(sim)
        rest = backfill(env, start, end, "rest")
        rest_only_requests = rest_requests(sim) - requests_before
        print(rest["text"])
        assert_exact(sim, want, rest, minutes)
        assert "from files" not in rest

    print(
        f"files+REST: {files['trades']:,} trades in {files['seconds']:.1f} s ({files['per_second']:,.0f}/s, "
        f"{files_requests} REST requests); REST only: {rest['trades']:,} in {rest['seconds']:.1f} s "
        f"({rest['per_second']:,.0f}/s, {rest_only_requests} REST requests): "
        f"{files['per_second'] / rest['per_second']:.1f}×\n"
        f"without building the candles (files+REST {files['candles_s']:.1f} s, REST {rest['candles_s']:.1f} s of it): "
        f"{files['fetch_per_second']:,.0f}/s against {rest['fetch_per_second']:,.0f}/s: "
        f"{files['fetch_per_second'] / rest['fetch_per_second']:.1f}×  (whole test {time.monotonic() - began:.0f} s)"
    )
    assert files_requests * 10 <= rest_only_requests  # the days took no REST page: only the two hours did
