"""The Kraken venue under /kraken: pair names, REST shapes against the recorded capture, Trades paging by
since/last, OHLC's 720 bars and open last row. Errors and faults are in test_kraken_faults.py, truth and the
market in test_kraken_truth.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from exchangesim.__main__ import parse_args
from exchangesim.config import SimConfig
from exchangesim.engine.aggregate import MINUTE
from exchangesim.engine.market import Listing, Market
from exchangesim.faults import Faults
from exchangesim.kraken.pairs import names, pair_spec
from exchangesim.kraken.venue import KrakenVenue
from exchangesim.kraken.wire import number
from exchangesim.server import VENUES, Simulator
from exchangesim.symbols import UnknownSymbolError
from tests.conftest import shared_file, sim_config
from tests.exchangesim.kraken_client import Kr, kr_get, post, unlimited
from tests.exchangesim.test_coinbase import truth

CAPTURE_TRADES = "kraken-rest/kraken_http_trades_XBTUSDT.json"
CAPTURE_OHLC = "kraken-rest/kraken_http_ohlc_XBTUSDT_1m.json"
REFERENCE_PAIR_FIELDS = {  # the AssetPairs example of the reference, plus cost_decimals
    "altname",
    "wsname",
    "aclass_base",
    "base",
    "aclass_quote",
    "quote",
    "lot",
    "cost_decimals",
    "pair_decimals",
    "lot_decimals",
    "lot_multiplier",
    "leverage_buy",
    "leverage_sell",
    "fees",
    "fees_maker",
    "fee_volume_currency",
    "margin_call",
    "margin_stop",
    "ordermin",
    "costmin",
    "tick_size",
    "status",
}
T0 = 1_722_495_600_000  # 2024-08-01 07:00 UTC: where the pinned markets start


def capture(name: str) -> dict[str, Any]:
    return json.loads(shared_file(name).read_text())


def kinds(row: list[Any]) -> list[str]:
    """The JSON kind of each field of a row (``str``, ``float``, ``int``)."""
    return [type(v).__name__ for v in row]


# -- pairs ------------------------------------------------------------------------------------------------
def test_pair_names_and_specs() -> None:
    """Every spelling of a pair gives one spec named by its v1 name, with canonical assets; result keys run
    legacy codes together (XXBTZUSD) and are the altname otherwise (XBTUSDT, as in the capture)."""
    for name in ("XBT/USD", "btc/usd", "XBTUSD", "XXBTZUSD"):
        spec = pair_spec(name)
        assert (spec.symbol, spec.base, spec.quote, spec.price_dp, spec.qty_dp) == ("XBT/USD", "BTC", "USD", 1, 8)
    assert names(pair_spec("XBT/USD")).key == "XXBTZUSD"
    assert names(pair_spec("ETHUSD")).key == "XETHZUSD"
    assert pair_spec("ETH/USD").price_dp == 2
    usdt = names(pair_spec("XBTUSDT"))
    assert (usdt.key, usdt.altname, usdt.wsname, usdt.v2) == ("XBTUSDT", "XBTUSDT", "XBT/USDT", "BTC/USDT")
    assert next(iter(capture(CAPTURE_TRADES)["result"])) == usdt.key
    doge = names(pair_spec("DOGE/USD"))
    assert (doge.key, doge.altname, doge.wsname, doge.v2) == ("XXDGZUSD", "XDGUSD", "XDG/USD", "DOGE/USD")
    for bad in ("", "XBT/", "/USD", "QQQQ", "A/B/C"):
        with pytest.raises(UnknownSymbolError):
            pair_spec(bad)


def test_registry_and_cli() -> None:
    """Kraken is registered after Binance and Coinbase; --kraken-symbols takes any spelling."""
    assert [v.name for v in VENUES] == ["binance", "coinbase", "kraken"]
    assert parse_args(["--kraken-symbols", "XBTUSD,sol/usd"]).venue_symbols == {"kraken": ("XBT/USD", "SOL/USD")}
    assert parse_args(["--kraken-symbols", ""]).venue_symbols == {"kraken": ()}
    with pytest.raises(SystemExit):
        parse_args(["--kraken-symbols", "QQQQ"])


def test_ws_numbers_keep_their_digits() -> None:
    """WebSocket numbers are written from the integers: no float artefacts, one decimal at least."""
    assert [number(3, 1), number(4000, 2), number(5117, 4), number(1, 8), number(30000000, 7)] == [
        "0.3",
        "40.0",
        "0.5117",
        "0.00000001",
        "3.0",
    ]


# -- REST shapes --------------------------------------------------------------------------------------
async def test_time_assets_and_asset_pairs(kr: Kr) -> None:
    """Time is unixtime and rfc1123; Assets lists XXBT/XETH/ZUSD; AssetPairs keys the listed pairs by result
    key with the reference's fields, and ``pair=`` takes altnames, result keys or names, comma-separated."""
    sim, http = kr
    st, body = await kr_get(http, sim, "Time")
    assert st == 200
    assert body["error"] == []
    assert abs(body["result"]["unixtime"] - time.time()) < 5
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d\d \d\d:\d\d:\d\d \+0000", body["result"]["rfc1123"])
    _, assets = await kr_get(http, sim, "Assets")
    assert set(assets["result"]) == {"XXBT", "XETH", "ZUSD"}
    assert assets["result"]["XXBT"]["altname"] == "XBT"
    _, body = await kr_get(http, sim, "AssetPairs")
    pairs = body["result"]
    assert set(pairs) == {"XXBTZUSD", "XETHZUSD"}
    btc = pairs["XXBTZUSD"]
    assert set(btc) == REFERENCE_PAIR_FIELDS
    assert {
        k: btc[k]
        for k in ("altname", "wsname", "base", "quote", "pair_decimals", "lot_decimals", "tick_size", "status")
    } == {
        "altname": "XBTUSD",
        "wsname": "XBT/USD",
        "base": "XXBT",
        "quote": "ZUSD",
        "pair_decimals": 1,
        "lot_decimals": 8,
        "tick_size": "0.1",
        "status": "online",
    }
    assert pairs["XETHZUSD"]["tick_size"] == "0.01"
    for query in ("XBTUSD", "XXBTZUSD", "XBT/USD", "BTC/USD"):
        assert (await kr_get(http, sim, "AssetPairs", pair=query))[1] == {"error": [], "result": {"XXBTZUSD": btc}}
    both = (await kr_get(http, sim, "AssetPairs", pair="ETHUSD,XBTUSD"))[1]["result"]
    assert list(both) == ["XETHZUSD", "XXBTZUSD"]
    assert await kr_get(http, sim, "AssetPairs", pair="XBTUSD,NOPEUSD") == (
        200,
        {"error": ["EQuery:Unknown asset pair"], "result": {}},
    )


async def test_trades_shape_matches_the_capture(kr: Kr) -> None:
    """Trades rows have the capture's kinds and formats (5-decimal price, 8-decimal volume, float seconds,
    b/s, m/l, "", int id), oldest first with contiguous ids; ``last`` is the ns string of the last row; the
    result key is the pair's whatever spelling asked; count defaults to 1000."""
    sim, http = kr
    real = capture(CAPTURE_TRADES)["result"]
    real_row = real["XBTUSDT"][0]
    _, body = await kr_get(http, sim, "Trades", pair="XBTUSD", count=300)
    assert body["error"] == []
    assert list(body["result"]) == ["XXBTZUSD", "last"]
    rows = body["result"]["XXBTZUSD"]
    assert len(rows) == 300
    assert all(kinds(r) == kinds(real_row) for r in rows)
    assert all(re.fullmatch(r"\d+\.\d{5}", r[0]) and re.fullmatch(r"\d+\.\d{8}", r[1]) for r in rows)
    assert all(r[0].endswith("0000") for r in rows), "XBT/USD ticks are 0.1"
    assert {r[3] for r in rows} == {"b", "s"}
    assert {r[4] for r in rows} == {"m", "l"}
    assert {r[5] for r in rows} == {""}
    ids = [r[6] for r in rows]
    assert ids == list(range(ids[0], ids[0] + 300))
    assert [r[2] for r in rows] == sorted(r[2] for r in rows)
    last = body["result"]["last"]
    assert isinstance(last, str)
    assert last.isdigit()
    assert isinstance(real["last"], str)
    assert abs(int(last) / 1e9 - rows[-1][2]) < 1e-6
    _, body = await kr_get(http, sim, "Trades", pair="XBTUSD")
    assert len(body["result"]["XXBTZUSD"]) == 1000
    since = int(last) - 30 * 10**9
    answers = [
        (await kr_get(http, sim, "Trades", pair=p, since=since, count=50))[1]
        for p in ("XBTUSD", "XXBTZUSD", "XBT/USD", "btc/usd")
    ]
    assert all(a == answers[0] for a in answers)


async def test_trades_page_by_since_and_last_without_gap_or_duplicate(kr: Kr) -> None:
    """Paging with since=<last> walks a range of trades with no id missing or repeated, pages ending inside a
    millisecond included; every row equals the truth; since in seconds also works."""
    sim, http = kr
    # 400 trades by id (a time window holds as many as the seeded market made that day): early in the history,
    # so pages beyond the range stay full
    first = sim.market.tapes["kraken:ETH/USD"].blocks[0].first_id + 1000
    want = await truth(http, sim, venue="kraken", symbol="ETH/USD", from_id=first, to_id=first + 399)
    assert [w["trade_id"] for w in want] == list(range(first, first + 400))
    since: int | str = int(want[0]["time_ns"]) - 1
    got: list[list[Any]] = []
    boundaries_inside_ms = 0
    while not got or got[-1][6] < want[-1]["trade_id"]:
        _, body = await kr_get(http, sim, "Trades", pair="ETHUSD", since=since, count=7)
        page = body["result"]["XETHZUSD"]
        assert len(page) == 7
        if got and int(got[-1][2] * 1000) == int(page[0][2] * 1000):
            boundaries_inside_ms += 1
        got += page
        since = body["result"]["last"]
    got = got[: len(want)]
    assert [r[6] for r in got] == [w["trade_id"] for w in want]
    assert boundaries_inside_ms > 0, "no page ended inside a millisecond: the test proves less than it says"
    for r, w in zip(got, want, strict=True):
        assert r == [w["price"], w["qty"], w["time"], w["side"], w["ord_type"], w["misc"], w["trade_id"]]
    second = int(want[0]["time_ms"]) // 1000 + 1
    _, body = await kr_get(http, sim, "Trades", pair="ETHUSD", since=second, count=5)
    rows = body["result"]["XETHZUSD"]
    assert rows[0][2] >= second
    assert rows[0][6] == next(w["trade_id"] for w in want if w["time_ms"] >= second * 1000)


async def test_trades_edges(kr: Kr) -> None:
    """Without since: the latest ``count`` trades; since after the last trade: nothing, ``last`` = since;
    since=0: the oldest trades of the venue's history."""
    sim, http = kr
    await post(http, sim, "/_sim/market", {"paused": True})
    await asyncio.sleep(0.1)
    latest = await truth(http, sim, venue="kraken", symbol="XBT/USD", start_ms=sim.market.started_ms - 5000)
    _, body = await kr_get(http, sim, "Trades", pair="XBTUSD", count=5)
    assert [r[6] for r in body["result"]["XXBTZUSD"]] == [w["trade_id"] for w in latest[-5:]]
    assert body["result"]["last"] == latest[-1]["time_ns"]
    _, body = await kr_get(http, sim, "Trades", pair="XBTUSD", since=latest[-1]["time_ns"])
    assert body == {"error": [], "result": {"XXBTZUSD": [], "last": latest[-1]["time_ns"]}}
    _, body = await kr_get(http, sim, "Trades", pair="XBTUSD", since=0, count=3)
    first = sim.market.tapes["kraken:XBT/USD"].blocks[0].first_id
    assert [r[6] for r in body["result"]["XXBTZUSD"]] == [first, first + 1, first + 2]


async def test_ohlc_shape_720_bars_open_last_row_and_flat_bars() -> None:
    """OHLC rows have the capture's kinds; 720 committed bars plus the open one (721 rows, as captured), one a
    minute with none missing; the last row is the current minute and ``last`` the bar before it; a minute
    without trades (if the live market had one: see the pinned test below) is flat at the previous close;
    bars agree with the truth; ``since`` keeps the bars after it and the open one; intervals are epoch-aligned."""
    real = capture(CAPTURE_OHLC)["result"]
    real_rows = real["XBTUSDT"]
    assert len(real_rows) == 721
    assert real["last"] == real_rows[-2][0]
    real_flat = next(r for r in real_rows if r[7] == 0)
    async with Simulator(sim_config(rate=0.3)) as sim, aiohttp.ClientSession() as http:
        await unlimited(http, sim)
        _, body = await kr_get(http, sim, "OHLC", pair="XBTUSD")
        now_min = sim.market.tapes["kraken:XBT/USD"].emitted_ms // MINUTE * 60
        rows, last = body["result"]["XXBTZUSD"], body["result"]["last"]
        assert list(body["result"]) == ["XXBTZUSD", "last"]
        assert len(rows) == 721
        assert all(kinds(r) == kinds(real_rows[0]) for r in rows)
        assert isinstance(last, int)
        assert last == rows[-2][0]
        assert rows[-1][0] in (now_min, now_min - 60)
        assert [r[0] for r in rows] == list(range(rows[0][0], rows[0][0] + 721 * 60, 60))
        assert all(re.fullmatch(r"\d+\.\d", v) for r in rows for v in r[1:6])
        for prev, r in itertools.pairwise(rows):
            if r[7] == 0:
                assert r[1:5] == [prev[4]] * 4
                assert r[5:] == real_flat[5:] == ["0.0", "0.00000000", 0]
        start = rows[-30][0] * 1000
        ticks = await truth(
            http, sim, venue="kraken", symbol="XBTUSD", start_ms=start, end_ms=rows[-2][0] * 1000 + 59_999
        )
        for r in rows[-30:-1]:
            mine = [t for t in ticks if r[0] * 1000 <= t["time_ms"] < r[0] * 1000 + 60_000]
            assert r[7] == len(mine)
            if mine:
                prices = [Decimal(t["price"]) for t in mine]
                assert [Decimal(v) for v in r[1:5]] == [prices[0], max(prices), min(prices), prices[-1]]
                assert Decimal(r[6]) == sum(Decimal(t["qty"]) for t in mine)
        # a minute may have begun since the first answer: then its open bar is the new minute's
        _, body = await kr_get(http, sim, "OHLC", pair="XBTUSD", since=rows[-4][0])
        opens = [r[0] for r in body["result"]["XXBTZUSD"]]
        assert opens[:3] == [r[0] for r in rows[-3:]]
        assert opens[3:] in ([], [rows[-1][0] + 60])
        _, body = await kr_get(http, sim, "OHLC", pair="XBTUSD", since=rows[-1][0] + 10**6)
        opens = [r[0] for r in body["result"]["XXBTZUSD"]]
        assert opens in ([rows[-1][0]], [rows[-1][0] + 60]), "the open bar is always there"
        for minutes in (5, 60, 1440, 10080):
            _, body = await kr_get(http, sim, "OHLC", pair="XBTUSD", interval=minutes)
            bars = body["result"]["XXBTZUSD"]
            assert all(r[0] % (minutes * 60) == 0 for r in bars)
            assert body["result"]["last"] == bars[-1][0] - minutes * 60
        _, day = await kr_get(http, sim, "OHLC", pair="XBTUSD", interval=1440)
        assert 1 <= len(day["result"]["XXBTZUSD"]) <= 3, "one day of history"


def test_ohlc_minutes_without_trades_are_flat_bars() -> None:
    """A minute without trades is a flat bar at the previous close with vwap "0.0", volume 0 and count 0, as
    captured. The market is pinned (seed 1, started at T0), so its slow tape has quiet minutes on every run,
    whatever the date; the live simulator's quiet minutes depend on the day it starts."""
    real_flat = next(r for r in capture(CAPTURE_OHLC)["result"]["XBTUSDT"] if r[7] == 0)
    spec = KrakenVenue.spec("XBT/USD")
    market = Market(
        symbols=(),
        rate=0.3,
        seed=1,
        history_days=1.0,
        start_ms=T0,
        listings=(Listing("kraken", spec, KrakenVenue.rate_factor),),
    )
    rows, last = KrakenVenue(market, SimConfig(), Faults()).public.bars(spec, 1, None)
    assert (len(rows), rows[-1][0] * 1000, last * 1000) == (721, T0, T0 - MINUTE)
    flat = [(prev, r) for prev, r in itertools.pairwise(rows) if r[7] == 0]
    assert flat, "the pinned slow market has quiet minutes"
    for prev, r in flat:
        assert r[1:5] == [prev[4]] * 4
        assert r[5:] == real_flat[5:] == ["0.0", "0.00000000", 0]
        opens = r[0] * 1000
        assert market.tapes["kraken:XBT/USD"].trades_between(opens, opens + MINUTE - 1, 1).ids.tolist() == []
