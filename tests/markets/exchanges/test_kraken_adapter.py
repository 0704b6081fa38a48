"""The Kraken adapters against the simulator's Kraken venue: trades paged only by time (``since``), read by id
from the time of the trade before; the last 720 one-minute bars and the open one; the WebSocket v2 trade
channel with its snapshot; the error envelope's rate limit waited out."""

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
from markets.exchanges.base import StreamEvent, TradeTick
from markets.exchanges.errors import BadRequest
from markets.exchanges.kraken.rest import KrakenRest
from markets.exchanges.kraken.stream import KrakenStream
from markets.exchanges.retry import RetryPolicy
from tests.conftest import sim_config

PAIR = "XBTUSD"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with running_in_thread(sim_config(rate=40.0, history_days=1.0)) as s:
        yield s


@pytest.fixture
def rest(sim: Simulator) -> Iterator[KrakenRest]:
    with KrakenRest(sim.venue_url("kraken"), policy=RetryPolicy(base_delay=0.05, max_delay=1.0)) as adapter:
        yield adapter


def truth(sim: Simulator, **bounds: int) -> list[tuple[int, Decimal, Decimal, str, int]]:
    resp = requests.get(f"{sim.url}/_sim/truth", timeout=60, params={"venue": "kraken", "symbol": PAIR, **bounds})
    resp.raise_for_status()
    rows = [json.loads(line) for line in resp.text.splitlines() if line]
    return [(r["trade_id"], Decimal(r["price"]), Decimal(r["qty"]), r["taker_side"], r["time_ms"]) for r in rows]


def as_truth(t: TradeTick) -> tuple[int, Decimal, Decimal, str, int]:
    return t.trade_id, t.price, t.qty, t.taker_side, int(t.ts.timestamp() * 1000)


def test_pairs_are_altnames_with_canonical_names(rest: KrakenRest) -> None:
    infos = {i.symbol: i for i in rest.instruments([PAIR, "ETHUSD"])}
    assert (infos[PAIR].canonical, infos[PAIR].base, infos[PAIR].quote) == ("BTC-USD", "BTC", "USD")
    assert infos["ETHUSD"].canonical == "ETH-USD"
    with pytest.raises(BadRequest, match="Unknown asset pair"):
        rest.instruments(["NOPEUSD"])


def test_trades_by_id_need_the_time_before_and_page_to_the_truth(sim: Simulator, rest: KrakenRest) -> None:
    start = datetime.now(UTC) - timedelta(minutes=20)
    first = rest.trades_by_time(PAIR, start, start + timedelta(minutes=1), limit=1)[0]
    with pytest.raises(ValueError, match="by time only"):
        rest.trades_from_id(PAIR, first.trade_id + 1)
    got, since, next_id = [], first.ts, first.trade_id + 1
    while next_id < first.trade_id + 3000:
        page = rest.trades_from_id(PAIR, next_id, since=since)
        assert page, f"no trades after {since}"
        assert page[0].trade_id == next_id, f"the page from {since} does not start at id {next_id}"
        got += page
        next_id, since = page[-1].trade_id + 1, page[-1].ts
    ids = [t.trade_id for t in got]
    assert ids == list(range(first.trade_id + 1, ids[-1] + 1))
    assert [as_truth(t) for t in got] == truth(sim, from_id=ids[0], to_id=ids[-1])


def test_ohlc_is_the_last_720_bars_and_the_open_one(rest: KrakenRest) -> None:
    now = datetime.now(UTC)
    bars = rest.klines(PAIR, "1m", now - timedelta(hours=20), now + timedelta(minutes=1))
    assert len(bars) == 721, "720 finished bars and the open one, as Kraken answers"
    assert bars[0].open_time >= now - timedelta(minutes=722), "older bars cannot be had, whatever since says"
    assert [b.closed for b in bars[-2:]] == [True, False]
    assert all(b.source == "exchange" for b in bars)


def test_the_rate_limit_envelope_is_waited_out(sim: Simulator, rest: KrakenRest) -> None:
    requests.post(
        f"{sim.url}/_sim/rest/fault",
        timeout=5,
        json={"venue": "kraken", "path_prefix": "/0/public/Trades", "status": 429, "count": 2},
    ).raise_for_status()
    before = rest.requests
    assert rest.latest_trades(PAIR, limit=3)
    assert rest.requests - before == 3


def test_the_trade_channel_snapshot_and_updates_are_the_truth(sim: Simulator) -> None:
    feed = KrakenStream(sim.venue_url("kraken", ws=True) + "/v2", (PAIR,))
    ticks: list[TradeTick] = []
    with connect(feed.url(), open_timeout=5) as ws:
        for message in feed.subscribe():
            ws.send(message)
        deadline = datetime.now(UTC) + timedelta(seconds=15)
        while len(ticks) < 80 and datetime.now(UTC) < deadline:
            got: Any = feed.parse(ws.recv(timeout=5), datetime.now(UTC))
            if isinstance(got, StreamEvent):
                ticks += got.ticks
    ids = [t.trade_id for t in ticks]
    assert len(ids) >= 80
    assert ids == list(range(ids[0], ids[0] + len(ids))), "the snapshot runs into the updates without a hole"
    assert {t.symbol for t in ticks} == {PAIR}
    assert [as_truth(t) for t in ticks] == truth(sim, from_id=ids[0], to_id=ids[-1])


def test_a_refused_subscription_is_a_clear_error() -> None:
    feed = KrakenStream("ws://unused", (PAIR,))
    with pytest.raises(ValueError, match="refused the subscription"):
        feed.parse(
            '{"method": "subscribe", "success": false, "error": "Currency pair not supported FOO/BAR"}',
            datetime.now(UTC),
        )
    assert feed.parse('{"channel": "heartbeat"}', datetime.now(UTC)) is None
