"""All three venues streamed at once by one ``manage.py stream --exchange all`` against the simulator, each venue's
socket dropped for 10 s in turn (Binance closed, Coinbase reset, Kraken stalled): afterwards every symbol of
every venue holds exactly the simulator's truth, no trade missing, none twice."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from exchangesim.server import Simulator, running_in_thread
from markets.models import Gap, Tick
from markets.venues import DEFAULT_INSTRUMENTS
from tests.conftest import sim_config, wait_for
from tradingsite.devstack import Service

ROOT = Path(__file__).resolve().parents[2]
DROPS = (("binance", "close"), ("coinbase", "reset"), ("kraken", "stall"))
Row = tuple[int, Decimal, Decimal, str, int]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """Every default instrument of every venue, 100 synthetic trades/s a symbol."""
    symbols = tuple(s for s, _, _ in DEFAULT_INSTRUMENTS["binance"])
    with running_in_thread(sim_config(rate=100.0, symbols=symbols)) as s:
        yield s


def start_stream(sim: Simulator, dev_stack: dict[str, Service]) -> subprocess.Popen[str]:
    env = os.environ | {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": dev_stack["redis"].uri,
        "MONGODB_DB": settings.DATABASES["default"]["NAME"],
        "LOG_LEVEL": "INFO",
        "BINANCE_REST_URL": sim.url,
        "BINANCE_WS_URL": sim.ws_url,
        "COINBASE_REST_URL": sim.venue_url("coinbase"),
        "COINBASE_WS_URL": sim.venue_url("coinbase", ws=True) + "/ws",
        "KRAKEN_REST_URL": sim.venue_url("kraken"),
        "KRAKEN_WS_URL": sim.venue_url("kraken", ws=True) + "/v2",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "stream", "--exchange", "all", "--stall-seconds", "3"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stored(exchange: str, symbol: str) -> list[Row]:
    coll = connection.database[Tick._meta.db_table]
    docs = coll.find({"exchange": exchange, "symbol": symbol}, {"_id": 0}).sort("trade_id", 1)
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


def truth(sim: Simulator, exchange: str, symbol: str, first_id: int, last_id: int) -> list[Row]:
    """The simulator's record of the same ids, in the same shape, whatever the venue writes."""
    params = {"venue": exchange, "symbol": symbol, "from_id": first_id, "to_id": last_id}
    if exchange == "binance":
        params["kind"] = "aggTrades"
    resp = requests.get(f"{sim.url}/_sim/truth", timeout=60, params=params)
    resp.raise_for_status()
    rows = [json.loads(line) for line in resp.text.splitlines() if line]
    return [_row(exchange, r) for r in rows]


def _row(exchange: str, r: dict[str, Any]) -> Row:
    if exchange == "binance":
        return r["a"], Decimal(r["p"]), Decimal(r["q"]), "sell" if r["m"] else "buy", r["T"]
    if exchange == "coinbase":
        return r["trade_id"], Decimal(r["price"]), Decimal(r["size"]), r["taker_side"], r["time_ms"]
    return r["trade_id"], Decimal(str(r["price"])), Decimal(str(r["qty"])), r["taker_side"], r["time_ms"]


def gap_state(exchange: str) -> tuple[int, int]:
    gaps = Gap.objects.filter(exchange=exchange, kind="trades")
    return gaps.count(), gaps.exclude(state="filled").count()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_three_venues_each_dropped_in_turn_lose_and_double_nothing(
    sim: Simulator, dev_stack: dict[str, Service]
) -> None:
    proc = start_stream(sim, dev_stack)
    symbols = [(e, s) for e, defaults in DEFAULT_INSTRUMENTS.items() for s, _, _ in defaults]
    try:
        for exchange, symbol in symbols:
            wait_for(
                f"live {exchange} {symbol} ticks",
                lambda e=exchange, s=symbol: Tick.objects.filter(exchange=e, symbol=s).count() > 50,
                60,
                proc,
            )
        for exchange, mode in DROPS:
            requests.post(
                f"{sim.url}/_sim/ws/drop", timeout=5, json={"venue": exchange, "mode": mode, "seconds": 10}
            ).raise_for_status()
            time.sleep(10)
            wait_for(
                f"{exchange}'s gaps to be filled",
                lambda e=exchange: gap_state(e)[0] > 0 and gap_state(e)[1] == 0,
                60,
                proc,
            )
        time.sleep(2)  # live tracking goes on after the recoveries
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    for exchange, symbol in symbols:
        rows = stored(exchange, symbol)
        ids = [r[0] for r in rows]
        assert ids == list(range(ids[0], ids[-1] + 1)), f"{exchange} {symbol}: a missing or doubled trade id"
        assert rows == truth(sim, exchange, symbol, ids[0], ids[-1]), f"{exchange} {symbol} differs from the truth"
        gaps = list(Gap.objects.filter(exchange=exchange, symbol=symbol, kind="trades"))
        print(
            f"\n{exchange} {symbol}: {len(ids)} trades stored, equal to the truth; gaps "
            + ", ".join(f"{g.start}..{g.end} {g.state} ({g.recovered} recovered)" for g in gaps)
        )
        assert all(g.state == "filled" and g.recovered == g.missing for g in gaps)
    for exchange, _ in DROPS:
        assert Gap.objects.filter(exchange=exchange).exists(), f"the {exchange} drop left no gap to fill"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_outlier_venue_and_a_stale_one_are_left_out_of_the_consolidated_price(
    sim: Simulator, dev_stack: dict[str, Service], settings: Any
) -> None:
    """While the three streams run, Kraken prints BTC 300 bps off for 15 s: the consolidated BTC price flags it
    as an outlier and is the median of Binance and Coinbase. Then Coinbase stops printing BTC: it is flagged
    stale and the price is the median of Binance and Kraken."""
    settings.CONSOLIDATED_STALE_SECONDS = 5
    settings.BINANCE_REST_URL, settings.COINBASE_REST_URL = sim.url, sim.venue_url("coinbase")
    settings.KRAKEN_REST_URL = sim.venue_url("kraken")
    call_command("seed_instruments", "--exchange", "all", stdout=io.StringIO())
    proc = start_stream(sim, dev_stack)
    btc = {"binance": "BTCUSDT", "coinbase": "BTC-USD", "kraken": "XBTUSD"}
    try:
        for exchange, symbol in btc.items():
            wait_for(
                f"live {exchange} ticks",
                lambda e=exchange, s=symbol: Tick.objects.filter(exchange=e, symbol=s).count() > 50,
                60,
                proc,
            )
        before = consolidated()
        assert {v["exchange"]: (v["stale"], v["outlier"]) for v in before["venues"]} == {
            e: (False, False) for e in btc
        }, before
        requests.post(
            f"{sim.url}/_sim/venue/outlier",
            timeout=5,
            json={"venue": "kraken", "symbol": "XBT/USD", "bps": 300, "seconds": 15},
        ).raise_for_status()
        wait_for(
            "Kraken flagged as an outlier",
            lambda: (
                _flags(consolidated())
                == {"binance": (False, False), "coinbase": (False, False), "kraken": (False, True)}
            ),
            15,
            proc,
        )
        outlier = consolidated()
        wait_for("Kraken back in line", lambda: _flags(consolidated())["kraken"] == (False, False), 30, proc)
        requests.post(
            f"{sim.url}/_sim/venue/stale", timeout=5, json={"venue": "coinbase", "symbol": "BTC-USD", "seconds": 60}
        ).raise_for_status()
        wait_for(
            "Coinbase stale",
            lambda: (
                _flags(consolidated())
                == {"binance": (False, False), "coinbase": (True, False), "kraken": (False, False)}
            ),
            30,
            proc,
        )
        stale = consolidated()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=90)
    for name, answer, left_out in (("outlier", outlier, "kraken"), ("stale", stale, "coinbase")):
        used = {v["exchange"]: Decimal(v["price"]) for v in answer["venues"] if v["used"]}
        print(
            f"\n{name}: consolidated BTC {answer['price']} from {sorted(used)}; "
            + "; ".join(f"{v['exchange']} {v['price']} ({v['deviation_bps']} bps)" for v in answer["venues"])
        )
        assert left_out not in used
        assert sorted(used) == sorted(set(btc) - {left_out})
        assert Decimal(answer["price"]) == sum(used.values()) / 2  # the median of the two venues left
    kraken = next(v for v in outlier["venues"] if v["exchange"] == "kraken")
    assert Decimal(kraken["deviation_bps"]) > 200


def consolidated() -> dict[str, Any]:
    from django.test import Client

    resp = Client().get("/api/v1/consolidated", {"base": "BTC"})
    assert resp.status_code == 200, resp.content
    return resp.json()


def _flags(answer: dict[str, Any]) -> dict[str, tuple[bool, bool]]:
    return {v["exchange"]: (v["stale"], v["outlier"]) for v in answer["venues"]}
