"""The Coinbase adapters against the simulator's Coinbase venue: REST pages by trade-id cursor and candles
(newest first on the wire, 300 at most, none for a quiet minute) give exactly the simulator's truth; the
feed's frames parse into ticks and heartbeats; 429s are waited out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from websockets.sync.client import connect

from exchangesim.server import Simulator, running_in_thread
from markets.candles import build_candles
from markets.exchanges.base import StreamEvent, TradeTick
from markets.exchanges.coinbase.rest import CoinbaseRest
from markets.exchanges.coinbase.stream import CoinbaseStream
from markets.exchanges.errors import BadRequest
from markets.exchanges.retry import RetryPolicy
from tests.conftest import sim_config

PRODUCT = "BTC-USD"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with running_in_thread(sim_config(rate=20.0, history_days=0.1)) as s:
        yield s


@pytest.fixture
def rest(sim: Simulator) -> Iterator[CoinbaseRest]:
    with CoinbaseRest(sim.venue_url("coinbase"), policy=RetryPolicy(base_delay=0.05, max_delay=0.5)) as adapter:
        yield adapter


def truth(sim: Simulator, **bounds: int) -> list[dict[str, Any]]:
    resp = requests.get(f"{sim.url}/_sim/truth", timeout=60, params={"venue": "coinbase", "symbol": PRODUCT, **bounds})
    resp.raise_for_status()
    return [json.loads(line) for line in resp.text.splitlines() if line]


def as_truth(t: TradeTick) -> tuple[int, Decimal, Decimal, str, int]:
    return t.trade_id, t.price, t.qty, t.taker_side, int(t.ts.timestamp() * 1000)


def expected(rows: list[dict[str, Any]]) -> list[tuple[int, Decimal, Decimal, str, int]]:
    return [(r["trade_id"], Decimal(r["price"]), Decimal(r["size"]), r["taker_side"], r["time_ms"]) for r in rows]


def test_products_and_an_unknown_one(rest: CoinbaseRest) -> None:
    infos = {i.symbol: i for i in rest.instruments()}
    assert {"BTC-USD", "ETH-USD"} <= infos.keys()
    btc = infos["BTC-USD"]
    assert (btc.canonical, btc.base, btc.quote, btc.tick_size) == ("BTC-USD", "BTC", "USD", Decimal("0.01"))
    with pytest.raises(BadRequest, match="DOGE-USD"):
        rest.instruments(["BTC-USD", "DOGE-USD"])


def test_trades_by_id_pages_are_the_truth_with_no_id_twice(sim: Simulator, rest: CoinbaseRest) -> None:
    latest = rest.latest_trades(PRODUCT, limit=1)[0].trade_id
    first = latest - 2500
    got: list[TradeTick] = []
    next_id = first
    while next_id <= latest - 1:
        page = rest.trades_from_id(PRODUCT, next_id)
        assert page, f"no trades from id {next_id}"
        got += [t for t in page if t.trade_id < latest]
        next_id = page[-1].trade_id + 1
    ids = [t.trade_id for t in got]
    assert ids == list(range(first, latest))
    assert [as_truth(t) for t in got] == expected(truth(sim, from_id=first, to_id=latest - 1))
    assert {t.source for t in got} == {"rest"}


def test_trades_by_time_read_back_from_the_newest(sim: Simulator, rest: CoinbaseRest) -> None:
    # Whole seconds: the truth is asked in milliseconds, so a bound with microseconds would let it start with a
    # trade of the bound's own millisecond that the adapter rightly leaves out (at 50 trades/s, about 2.5 % of runs).
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    start = end - timedelta(minutes=2)
    got = rest.trades_by_time(PRODUCT, start, end, limit=1000)
    rows = [
        r
        for r in truth(sim, start_ms=int(start.timestamp() * 1000), end_ms=int(end.timestamp() * 1000))
        if r["time_ms"] < int(end.timestamp() * 1000)
    ]
    assert [as_truth(t) for t in got] == expected(rows)[: len(got)]
    assert got


def test_candles_equal_candles_of_the_truth_and_quiet_minutes_have_none(sim: Simulator, rest: CoinbaseRest) -> None:
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    start = end - timedelta(minutes=90)
    bars = rest.klines(PRODUCT, "1m", start, end)
    rows = truth(sim, start_ms=int(start.timestamp() * 1000), end_ms=int(end.timestamp() * 1000) - 1)
    ticks = [
        TradeTick(
            "coinbase",
            PRODUCT,
            r["trade_id"],
            Decimal(r["price"]),
            Decimal(r["size"]),
            r["taker_side"],
            datetime.fromtimestamp(r["time_ms"] / 1000, UTC),
            datetime.now(UTC),
            "rest",
            r["trade_id"],
            r["trade_id"],
        )
        for r in rows
    ]
    want = build_candles(ticks, "1m")
    assert [b.open_time for b in bars] == [b.open_time for b in want]
    assert [(b.open, b.high, b.low, b.close, b.volume) for b in bars] == [
        (b.open, b.high, b.low, b.close, b.volume) for b in want
    ]
    assert len(rest.klines(PRODUCT, "1m", end - timedelta(hours=10), end)) <= 300  # one request: 300 at most


def test_429s_are_waited_out(sim: Simulator, rest: CoinbaseRest) -> None:
    requests.post(
        f"{sim.url}/_sim/rest/fault",
        timeout=5,
        json={"venue": "coinbase", "path_prefix": "/products", "status": 429, "count": 2},
    ).raise_for_status()
    before = rest.requests
    assert rest.latest_trades(PRODUCT, limit=5)
    assert rest.requests - before == 3


def test_feed_frames_parse_into_ticks_and_heartbeats(sim: Simulator) -> None:
    feed = CoinbaseStream(sim.venue_url("coinbase", ws=True) + "/ws", (PRODUCT,))
    ticks: list[TradeTick] = []
    beats: list[tuple[str, int]] = []
    kinds: list[str] = []
    with connect(feed.url(), open_timeout=5) as ws:
        for message in feed.subscribe():
            ws.send(message)
        while len(beats) < 2 or len(ticks) < 5:
            raw = ws.recv(timeout=5)
            kinds.append(json.loads(raw)["type"])
            got = feed.parse(raw, datetime.now(UTC))
            if isinstance(got, TradeTick):
                ticks.append(got)
            elif isinstance(got, StreamEvent):
                beats += got.last_ids
    assert kinds[0] == "subscriptions"
    assert kinds[1] == "last_match"
    ids = [t.trade_id for t in ticks]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert [as_truth(t) for t in ticks] == expected(truth(sim, from_id=ids[0], to_id=ids[-1]))
    assert all(product == PRODUCT and last >= ids[0] for product, last in beats)


def test_a_bad_frame_is_a_clear_error() -> None:
    feed = CoinbaseStream("ws://unused", (PRODUCT,))
    with pytest.raises(ValueError, match="not JSON"):
        feed.parse("{nope", datetime.now(UTC))
    with pytest.raises(ValueError, match="Failed to subscribe"):
        feed.parse(
            '{"type": "error", "message": "Failed to subscribe", "reason": "DOGE-XYZ is not a valid product"}',
            datetime.now(UTC),
        )
    assert feed.parse('{"type": "subscriptions", "channels": []}', datetime.now(UTC)) is None
