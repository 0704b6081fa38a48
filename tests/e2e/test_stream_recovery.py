"""The 10-second drop, end to end: ``manage.py stream`` against the simulator at 200 trades/s; the socket
is dropped (clean close, TCP reset, silent stall) for 10 s; afterwards the stored ticks equal the
simulator's ground truth exactly, and the gap is recorded as filled."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.management import call_command
from django.db import connection

from exchangesim.server import Simulator
from markets.id_pages import WORKERS
from markets.models import Candle, Feed, Gap, Tick
from tests.conftest import wait_for
from tests.e2e.conftest import manage_env
from tradingsite.devstack import Service

ROOT = Path(__file__).resolve().parents[2]
SYMBOL = "BTCUSDT"


def start_stream(sim: Simulator, dev_stack: dict[str, Service], *extra: str) -> subprocess.Popen[str]:
    env = manage_env(sim, dev_stack)
    return subprocess.Popen(
        [sys.executable, "manage.py", "stream", "--symbols", SYMBOL, *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stored() -> list[dict[str, Any]]:
    coll = connection.database[Tick._meta.db_table]
    return list(coll.find({"symbol": SYMBOL}, {"_id": 0}).sort("trade_id", 1))


def truth(sim: Simulator, first_id: int, last_id: int) -> list[dict[str, Any]]:
    """The simulator's aggregate trades with ids ``first_id..last_id``."""
    return _truth(sim, from_id=first_id, to_id=last_id)


def truth_by_time(sim: Simulator, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The aggregate trades with exchange times in ``[start, end)``, from the simulator's truth."""
    return _truth(sim, start_ms=int(start.timestamp() * 1000), end_ms=int(end.timestamp() * 1000) - 1)


def _truth(sim: Simulator, **params: int) -> list[dict[str, Any]]:
    resp = requests.get(f"{sim.url}/_sim/truth", timeout=60, params={"symbol": SYMBOL, "kind": "aggTrades", **params})
    resp.raise_for_status()
    return [json.loads(line) for line in resp.text.splitlines() if line]


def assert_equal_to_truth(sim: Simulator, docs: list[dict[str, Any]]) -> None:
    """Same ids (contiguous, none twice), prices, quantities, sides and exchange times as the simulator."""
    ids = [int(d["trade_id"]) for d in docs]
    assert ids == list(range(ids[0], ids[-1] + 1)), "a missing or doubled trade id"
    expected = truth(sim, ids[0], ids[-1])
    assert [e["a"] for e in expected] == ids
    for d, e in zip(docs, expected, strict=True):
        got = (
            d["price"].to_decimal(),
            d["qty"].to_decimal(),
            d["taker_side"],
            int(d["ts"].replace(tzinfo=UTC).timestamp() * 1000),
            int(d["first_trade_id"]),
            int(d["last_trade_id"]),
        )
        want = (Decimal(e["p"]), Decimal(e["q"]), "sell" if e["m"] else "buy", e["T"], e["f"], e["l"])
        assert got == want, f"trade {e['a']} differs"


def assert_candles_equal_truth(sim: Simulator, docs: list[dict[str, Any]]) -> int:
    """The stored 1m candles of the run equal candles computed here, plainly, from the simulator's truth
    for the same trades (the first and last minute hold only the part of the minute the run covered).

    One exception, in the run's first minute: a stream that restarts warms its signals from the exchange's klines,
    and a minute it had stored while still open is then taken from the exchange, whole (source ``exchange``). That
    candle must equal the truth of the whole minute. Returns how many minutes were compared."""
    minutes: dict[datetime, list[dict[str, Any]]] = {}
    for e in truth(sim, int(docs[0]["trade_id"]), int(docs[-1]["trade_id"])):
        t = datetime.fromtimestamp(e["T"] / 1000, UTC)
        minutes.setdefault(t.replace(second=0, microsecond=0), []).append(e)
    first = min(minutes)
    stored_candles = {c.open_time: c for c in Candle.objects.filter(symbol=SYMBOL, interval="1m", source="trades")}
    if first not in stored_candles:
        whole = Candle.objects.get(symbol=SYMBOL, interval="1m", open_time=first, source="exchange")
        minutes[first] = truth_by_time(sim, first, first + timedelta(minutes=1))
        stored_candles[first] = whole
    assert set(stored_candles) == set(minutes)
    for minute, trades in minutes.items():
        c = stored_candles[minute]
        prices = [Decimal(e["p"]) for e in trades]
        want = (
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
            sum(Decimal(e["q"]) for e in trades),
            sum(e["l"] - e["f"] + 1 for e in trades),
            sum(Decimal(e["q"]) for e in trades if not e["m"]),
        )
        got = (c.open, c.high, c.low, c.close, c.volume, c.trades, c.taker_buy_volume)
        assert got == want, f"candle {minute} ({c.source}) differs from the truth"
    return len(minutes)


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["close", "reset", "stall"])
def test_ten_second_drop_loses_and_doubles_nothing(
    mode: str, fast_sim: Simulator, dev_stack: dict[str, Service]
) -> None:
    """After a 10 s drop in each mode the stored ticks are exactly the truth, the gap is filled with the
    recovered count, and recovery ends within 2 s of the reconnect."""
    proc = start_stream(fast_sim, dev_stack, "--stall-seconds", "3")
    try:
        wait_for("live ticks", lambda: Tick.objects.filter(symbol=SYMBOL).count() > 400, 30, proc)
        requests.post(f"{fast_sim.url}/_sim/ws/drop", json={"mode": mode, "seconds": 10}, timeout=5).raise_for_status()
        wait_for("the gap to be filled", lambda: Gap.objects.filter(symbol=SYMBOL, state="filled").exists(), 60, proc)
        time.sleep(2)  # live tracking goes on after the recovery
    finally:
        out = stop(proc)
    gap = Gap.objects.get(symbol=SYMBOL, kind="trades")
    recovery = (gap.updated_at - gap.detected_at).total_seconds()
    print(f"\n{mode}: gap {gap.start}..{gap.end}, {gap.recovered} trades recovered in {recovery:.2f} s")
    assert gap.recovered == gap.end - gap.start + 1 == gap.missing
    assert recovery < 2.0
    docs = stored()
    assert_equal_to_truth(fast_sim, docs)
    by_id = {int(d["trade_id"]): d["ts"] for d in docs}
    assert (by_id[gap.end] - by_id[gap.start]).total_seconds() > 8, "the hole covers the 10 s the socket was down"
    compared = assert_candles_equal_truth(fast_sim, docs)
    print(f"{mode}: the {compared} 1m candles of the run equal candles computed from the truth")
    assert "filled" in out


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sigkill_and_restart_15_s_later_loses_nothing(fast_sim: Simulator, dev_stack: dict[str, Service]) -> None:
    """The stream killed with SIGKILL mid-flow and started again 15 s later resumes from the last stored id:
    the whole run equals the truth, with no missing and no doubled trade, and so do its 1m candles."""
    proc = start_stream(fast_sim, dev_stack)
    try:
        wait_for("live ticks", lambda: Tick.objects.filter(symbol=SYMBOL).count() > 400, 30, proc)
    finally:
        proc.kill()
        proc.wait(10)
    time.sleep(15)
    proc = start_stream(fast_sim, dev_stack)
    try:
        wait_for("the gap to be filled", lambda: Gap.objects.filter(symbol=SYMBOL, state="filled").exists(), 60, proc)
        time.sleep(2)
    finally:
        stop(proc)
    gap = Gap.objects.get(symbol=SYMBOL, kind="trades")
    assert gap.recovered == gap.end - gap.start + 1 == gap.missing
    docs = stored()
    assert_equal_to_truth(fast_sim, docs)
    by_id = {int(d["trade_id"]): d["ts"] for d in docs}
    assert (by_id[gap.end] - by_id[gap.start]).total_seconds() > 12, "the hole covers the 15 s the stream was down"
    assert_candles_equal_truth(fast_sim, docs)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_429_on_the_backfill_delays_the_fill_but_it_completes(
    fast_sim: Simulator, dev_stack: dict[str, Service]
) -> None:
    """With the simulator answering 429 to the gap fill's first requests, the gap still fills, later: after at least
    one Retry-After of 2 s (the fill asks a few pages at once: requests in flight together may each be answered 429
    and then share one wait), with no ban, and no request sent during a wait other than those already in flight
    when a 429 came (at most ``id_pages.WORKERS - 1`` a 429)."""
    proc = start_stream(fast_sim, dev_stack, "--stall-seconds", "3")
    try:
        wait_for("live ticks", lambda: Tick.objects.filter(symbol=SYMBOL).count() > 400, 30, proc)
        requests.post(
            f"{fast_sim.url}/_sim/rest/fault",
            timeout=5,
            json={"status": 429, "count": 3, "retry_after": 2, "path_prefix": "/api/v3/aggTrades"},
        ).raise_for_status()
        requests.post(
            f"{fast_sim.url}/_sim/ws/drop", json={"mode": "close", "seconds": 5}, timeout=5
        ).raise_for_status()
        wait_for("the gap to be filled", lambda: Gap.objects.filter(symbol=SYMBOL, state="filled").exists(), 60, proc)
        time.sleep(1)
    finally:
        stop(proc)
    gap = Gap.objects.get(symbol=SYMBOL, kind="trades")
    waited = (gap.updated_at - gap.detected_at).total_seconds()
    injected = requests.get(f"{fast_sim.url}/_sim/status", timeout=5).json()["faults_injected"]
    early = injected.get("backoff_violation", 0)
    print(f"\ngap of {gap.end - gap.start + 1} trades filled {waited:.2f} s after it opened; faults: {injected}")
    assert waited >= 2, "at least one Retry-After of 2 s waited"
    assert injected["rest_429"] == 3
    assert "ban_418" not in injected
    assert early <= 3 * (WORKERS - 1), "requests sent during a Retry-After beyond those in flight"
    assert_equal_to_truth(fast_sim, stored())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_feed_drop_command_reaches_the_stream_and_the_hole_is_filled(
    fast_sim: Simulator, dev_stack: dict[str, Service]
) -> None:
    """``manage.py feed drop --seconds 5`` goes over the channel layer to the running stream, which closes
    its socket, stays down 5 s, reconnects and fills exactly the trades it missed; ``feed status`` shows it."""
    proc = start_stream(fast_sim, dev_stack, "--stall-seconds", "3")
    try:
        wait_for("live ticks", lambda: Tick.objects.filter(symbol=SYMBOL).count() > 400, 30, proc)
        wait_for(
            "the feed to say connected",
            lambda: Feed.objects.filter(symbol=SYMBOL, state="connected").exists(),
            10,
            proc,
        )
        out = io.StringIO()
        call_command("feed", "drop", "--seconds", "5", stdout=out)
        assert "drop its socket for 5 s" in out.getvalue()
        wait_for("the gap to be filled", lambda: Gap.objects.filter(symbol=SYMBOL, state="filled").exists(), 60, proc)
        time.sleep(1)
        status = io.StringIO()
        call_command("feed", "status", stdout=status)
        assert f"binance:{SYMBOL}" in status.getvalue()
        assert "connected" in status.getvalue()
    finally:
        out_text = stop(proc)
    assert "drop requested (close, 5 s)" in out_text
    gap = Gap.objects.get(symbol=SYMBOL, kind="trades")
    docs = stored()
    by_id = {int(d["trade_id"]): d["ts"] for d in docs}
    assert (by_id[gap.end] - by_id[gap.start]).total_seconds() > 4
    assert_equal_to_truth(fast_sim, docs)
