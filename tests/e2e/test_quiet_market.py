"""A quiet market is not a dead socket, end to end. ``manage.py stream --exchange all`` runs against the simulator and
the whole market is paused for 60 s: no venue prints a trade. Binance sends nothing at all meanwhile (the stream's
pings are answered), Coinbase and Kraken send heartbeats. The simulator counts no new stream connection during the
pause and every Feed record stays "connected". After the market resumes, the stored trades of every symbol equal the
simulator's truth (none missing, none doubled), no gap was ever opened, and the 1m candles equal candles computed
from the truth (a whole minute the pause left without a trade, if there is one, is a flat synthetic candle at the
last price)."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests

from exchangesim.server import Simulator, running_in_thread
from markets.models import Candle, Feed, Gap, Tick
from markets.venues import DEFAULT_INSTRUMENTS
from tests.conftest import sim_config, wait_for
from tests.e2e.test_multivenue_recovery import Row, start_stream, stored
from tradingsite.devstack import Service

PAUSE = 60.0
TRADES_AROUND = 60  # stored trades of each symbol before the pause, and again after it
SYMBOLS = [(e, s) for e, defaults in DEFAULT_INSTRUMENTS.items() for s, _, _ in defaults]
Trade = tuple[Row, int]  # (id, price, qty, taker side, ms) and how many raw trades it stands for


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """Every default instrument of every venue, 20 synthetic trades/s a symbol."""
    binance = tuple(s for s, _, _ in DEFAULT_INSTRUMENTS["binance"])
    with running_in_thread(sim_config(rate=20.0, symbols=binance)) as s:
        yield s


def sim_status(sim: Simulator) -> dict[str, Any]:
    resp = requests.get(f"{sim.url}/_sim/status", timeout=5)
    resp.raise_for_status()
    return resp.json()


def connections_opened(sim: Simulator) -> dict[str, int]:
    """Stream connections each venue of the simulator has accepted so far."""
    return {name: v["connections_opened"] for name, v in sim_status(sim)["venues"].items()}


def feeds() -> dict[tuple[str, str], tuple[str, int]]:
    """(exchange, symbol) -> (state, reconnects) of every Feed record."""
    return {(f.exchange, f.symbol): (f.state, f.reconnects) for f in Feed.objects.all()}


def pause(sim: Simulator, paused: bool) -> None:
    requests.post(f"{sim.url}/_sim/market", json={"paused": paused}, timeout=5).raise_for_status()


def truth_trades(sim: Simulator, exchange: str, symbol: str, first_id: int, last_id: int) -> list[Trade]:
    """The simulator's record of the ids ``first_id..last_id``, each with the raw trades it stands for (a Binance
    aggregate trade holds ``l - f + 1``, a trade of the other venues one)."""
    params: dict[str, str | int] = {"venue": exchange, "symbol": symbol, "from_id": first_id, "to_id": last_id}
    if exchange == "binance":
        params["kind"] = "aggTrades"
    resp = requests.get(f"{sim.url}/_sim/truth", timeout=60, params=params)
    resp.raise_for_status()
    rows = [json.loads(line) for line in resp.text.splitlines() if line]
    if exchange == "binance":
        return [
            ((r["a"], Decimal(r["p"]), Decimal(r["q"]), "sell" if r["m"] else "buy", r["T"]), r["l"] - r["f"] + 1)
            for r in rows
        ]
    qty = "size" if exchange == "coinbase" else "qty"
    return [
        ((r["trade_id"], Decimal(str(r["price"])), Decimal(str(r[qty])), r["taker_side"], r["time_ms"]), 1)
        for r in rows
    ]


def assert_candles_exact(exchange: str, symbol: str, trades: list[Trade]) -> tuple[int, int]:
    """The stored 1m candles from trades equal candles computed here from ``trades`` (the truth of the stored ids);
    a stored minute without a trade lies between traded ones and is flat at the last price, zero volume, synthetic.
    Returns (minutes with trades, quiet minutes)."""
    minutes: dict[datetime, list[Trade]] = {}
    for trade in trades:
        t = datetime.fromtimestamp(trade[0][4] / 1000, UTC)
        minutes.setdefault(t.replace(second=0, microsecond=0), []).append(trade)
    candles = {
        c.open_time: c for c in Candle.objects.filter(exchange=exchange, symbol=symbol, interval="1m", source="trades")
    }
    assert set(minutes) <= set(candles), f"{exchange} {symbol}: minutes without a candle"
    for minute, rows in minutes.items():
        c = candles[minute]
        prices = [r[1] for r, _ in rows]
        want = (
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
            sum(r[2] for r, _ in rows),
            sum(n for _, n in rows),
            sum(r[2] for r, _ in rows if r[3] == "buy"),
        )
        got = (c.open, c.high, c.low, c.close, c.volume, c.trades, c.taker_buy_volume)
        assert got == want, f"{exchange} {symbol}: candle {minute} differs from the truth"
    quiet = sorted(set(candles) - set(minutes))
    for minute in quiet:
        c = candles[minute]
        before = max(m for m in minutes if m < minute)
        assert minute < max(minutes), f"{exchange} {symbol}: a candle after the last trade ({minute})"
        last = minutes[before][-1][0][1]
        assert (c.synthetic, c.volume, c.trades) == (True, 0, 0), f"{exchange} {symbol}: quiet {minute} has trades"
        assert c.open == c.high == c.low == c.close == last, f"{exchange} {symbol}: quiet {minute} is not flat"
    return len(minutes), len(quiet)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_market_paused_60_s_opens_no_connection_and_loses_nothing(
    sim: Simulator, dev_stack: dict[str, Service]
) -> None:
    proc = start_stream(sim, dev_stack)  # --exchange all --stall-seconds 3: a quiet Binance would reconnect ~20 times
    try:
        for exchange, symbol in SYMBOLS:
            wait_for(
                f"live {exchange} {symbol} ticks",
                lambda e=exchange, s=symbol: Tick.objects.filter(exchange=e, symbol=s).count() >= TRADES_AROUND,
                60,
                proc,
            )
        wait_for("every feed connected", lambda: {s for s, _ in feeds().values()} == {"connected"}, 10, proc)
        assert len(feeds()) == len(SYMBOLS)
        opened, before = connections_opened(sim), feeds()
        pause(sim, True)
        paused_at = time.monotonic()
        seen: dict[tuple[str, str], set[tuple[str, int]]] = {}
        while time.monotonic() < paused_at + PAUSE:  # the fault is a duration: the feeds are watched throughout
            for key, state in feeds().items():
                seen.setdefault(key, set()).add(state)
            assert proc.poll() is None, "the stream ended during the pause"
            time.sleep(1)
        new_connections = {v: n - opened[v] for v, n in connections_opened(sim).items()}
        resumed = datetime.now(UTC)
        pause(sim, False)
        resumed_at = time.monotonic()
        recovered: dict[str, float] = {}
        for exchange, symbol in SYMBOLS:
            wait_for(
                f"{exchange} {symbol} trading again",
                lambda e=exchange, s=symbol: Tick.objects.filter(exchange=e, symbol=s, ts__gt=resumed).exists(),
                30,
                proc,
            )
            recovered.setdefault(exchange, time.monotonic() - resumed_at)
        for exchange, symbol in SYMBOLS:  # live tracking goes on after the pause
            wait_for(
                f"{TRADES_AROUND} {exchange} {symbol} trades after the pause",
                lambda e=exchange, s=symbol: (
                    Tick.objects.filter(exchange=e, symbol=s, ts__gt=resumed).count() >= TRADES_AROUND
                ),
                60,
                proc,
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    print(f"\nnew stream connections during the {PAUSE:g} s pause: {new_connections}")
    assert new_connections == dict.fromkeys(new_connections, 0)
    assert seen == {key: {state} for key, state in before.items()}, "a feed left 'connected' during the pause"
    assert "reconnecting in" not in out, "the stream reconnected"
    gaps = [(g.exchange, g.symbol, g.start, g.end, g.state) for g in Gap.objects.filter(kind="trades")]
    said = "\n".join(line for line in out.splitlines() if " gap " in line or "frame" in line)
    assert gaps == [], f"the socket never missed a trade: no trade id was a gap; the stream said:\n{said}"
    for exchange, symbol in SYMBOLS:
        rows = stored(exchange, symbol)
        ids = [r[0] for r in rows]
        trades = truth_trades(sim, exchange, symbol, ids[0], ids[-1])
        truth_ids = {r[0] for r, _ in trades}
        doubled, missing = len(ids) - len(set(ids)), len(truth_ids - set(ids))
        minutes, quiet = assert_candles_exact(exchange, symbol, trades)
        print(
            f"quiet market {PAUSE:g} s, {exchange} {symbol}: {len(trades)} trades compared, {missing} missing, "
            f"{doubled} doubled, {minutes} candles exact (+{quiet} quiet), trading again "
            f"{recovered[exchange]:.2f} s after the resume, {new_connections[exchange]} new connections in the pause"
        )
        assert (missing, doubled) == (0, 0)
        assert rows == [r for r, _ in trades], f"{exchange} {symbol} differs from the truth"
        assert any(r[4] > int(resumed.timestamp() * 1000) + 1000 for r in rows), "trades after the pause are stored"
        pause_ms = [b[4] - a[4] for a, b in itertools.pairwise(rows)]
        assert max(pause_ms) >= (PAUSE - 5) * 1000, f"{exchange} {symbol}: the pause is in the stored trades"
