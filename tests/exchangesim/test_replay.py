"""Replay of recorded markets: a Binance WebSocket capture and a data.binance.vision klines file.

The recording is parsed independently here and compared with what the simulator serves. Loop 0 of a
replay plays from the simulator's start with the recorded ids; the loop before it (ids just below) is
the tape's history, so whole recorded windows can be checked over REST without waiting for them.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import itertools
import json
import time
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from exchangesim.engine.replay import ReplayFormatError
from exchangesim.server import Simulator
from tests.conftest import shared_file, sim_config

CAPTURE = "binance-spot-capture/btcusdt_20240808.gz"
VISION = "binance-vision/ADABTC-1m-2021-11-28.zip"


def recorded_trades(path: Path) -> list[dict[str, Any]]:
    """The ``@trade`` frames of a capture (lines are ``<ns> <json>``), in file order."""
    out = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            _, _, raw = line.partition(" ")
            msg = json.loads(raw)
            if isinstance(msg, dict) and str(msg.get("stream", "")).endswith("@trade"):
                out.append(msg["data"])
    return out


def _d8(x: Decimal) -> str:
    return f"{x:.8f}"


def klines_of(trades: list[tuple[int, int, Decimal, Decimal, bool]], step: int) -> dict[int, list[Any]]:
    """Kline rows keyed by open time from ``(id, time, price, qty, buyer_maker)`` tuples."""
    groups: dict[int, list[tuple[int, int, Decimal, Decimal, bool]]] = {}
    for t in trades:
        groups.setdefault(t[1] // step * step, []).append(t)
    rows = {}
    for o, g in groups.items():
        prices = [t[2] for t in g]
        buys = [t for t in g if not t[4]]
        rows[o] = [
            o,
            _d8(prices[0]),
            _d8(max(prices)),
            _d8(min(prices)),
            _d8(prices[-1]),
            _d8(sum((t[3] for t in g), Decimal(0))),
            o + step - 1,
            _d8(sum((t[2] * t[3] for t in g), Decimal(0))),
            g[-1][0] - g[0][0] + 1,
            _d8(sum((t[3] for t in buys), Decimal(0))),
            _d8(sum((t[2] * t[3] for t in buys), Decimal(0))),
            "0",
        ]
    return rows


async def _status(s: aiohttp.ClientSession, sim: Simulator) -> dict[str, Any]:
    async with s.get(f"{sim.url}/_sim/status") as r:
        return await r.json()


async def _trade_frames(sim: Simulator, until: Any, within: float) -> list[dict[str, Any]]:
    """``btcusdt@trade`` frames until ``until(frames)`` holds; fails when ``within`` seconds pass first."""
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    # close_timeout: a server with a backlog of frames answers the close late (reported for ws.py)
    async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade", max_size=None, close_timeout=1) as ws:
        while not until(frames):
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))))
    return frames


async def test_capture_trades_replay_with_recorded_ids_and_shifted_times() -> None:
    """At speed 1 the socket's trade frames carry the recorded ids, prices, quantities and sides in
    order, with times shifted by ``replay_time_shift_ms``; only the recorded symbol is served."""
    path = shared_file(CAPTURE)
    rec = recorded_trades(path)
    by_id = {int(t["t"]): t for t in rec}
    async with Simulator(sim_config(replay=(path,), speed=1.0)) as sim, aiohttp.ClientSession() as s:
        status = await _status(s, sim)
        assert set(status["symbols"]) == {"BTCUSDT"}, "with replay the default symbols are not added"
        info = status["symbols"]["BTCUSDT"]
        shift = info["replay_time_shift_ms"]
        assert info["kind"] == "replay"
        assert abs(rec[0]["T"] + shift - status["started_ms"]) <= 1, "the first recorded trade plays at the start"
        frames = await _trade_frames(sim, lambda f: len(f) >= 40, within=8)
    first = frames[0]["t"]
    assert first - int(rec[0]["t"]) < len(rec) // 2, "the socket joined near the start of the recording"
    assert [f["t"] for f in frames] == list(range(first, first + len(frames)))
    for f in frames:
        want = by_id[f["t"]]
        assert f["s"] == "BTCUSDT"
        assert Decimal(f["p"]) == Decimal(want["p"])
        assert Decimal(f["q"]) == Decimal(want["q"])
        assert f["m"] == want["m"]
        assert f["T"] == want["T"] + shift
        assert f["T"] <= f["E"]


async def test_capture_rest_klines_equal_klines_of_recorded_trades() -> None:
    """REST 1m and 1s klines over the recorded window (the loop before the start, shifted by
    ``replay_time_shift_ms - replay_loop_ms``) equal klines computed here from the recorded trades."""
    path = shared_file(CAPTURE)
    rec = recorded_trades(path)
    async with Simulator(sim_config(replay=(path,), speed=1.0)) as sim, aiohttp.ClientSession() as s:
        info = (await _status(s, sim))["symbols"]["BTCUSDT"]
        loop_ms, shift = info["replay_loop_ms"], info["replay_time_shift_ms"]
        span = int(rec[-1]["t"]) - int(rec[0]["t"]) + 1
        hist_shift = shift - loop_ms
        t0 = int(rec[0]["T"]) + shift  # loop 0 starts here: klines closing before it are history only
        trades = [
            (int(t["t"]) - span, int(t["T"]) + hist_shift, Decimal(t["p"]), Decimal(t["q"]), bool(t["m"])) for t in rec
        ]
        assert loop_ms > trades[-1][1] - trades[0][1], "one loop holds the whole recording"
        for interval, step in (("1m", 60_000), ("1s", 1000)):
            want = klines_of(trades, step)
            opens = range(trades[0][1] // step * step, t0 - step + 1, step)
            got: list[list[Any]] = []
            nxt = opens[0]
            while nxt <= opens[-1]:
                async with s.get(
                    f"{sim.url}/api/v3/klines",
                    params={
                        "symbol": "BTCUSDT",
                        "interval": interval,
                        "startTime": nxt,
                        "endTime": opens[-1],
                        "limit": 1000,
                    },
                ) as r:
                    page = await r.json()
                got.extend(page)
                nxt = page[-1][0] + step
            assert [g[0] for g in got] == list(opens)
            prev = None
            for row in got:
                if row[0] in want:
                    assert row == want[row[0]], interval
                    prev = want[row[0]][4]
                else:  # a second with no recorded trade: flat at the previous close, nothing traded
                    assert prev is not None
                    assert row[1:5] == [prev] * 4
                    assert (row[5], row[8]) == ("0.00000000", 0)
            assert sum(g[8] for g in got if g[0] in want) == sum(w[8] for o, w in want.items() if o in opens)


async def test_fast_replay_loops_with_contiguous_ids() -> None:
    """At speed 200 the ~6-minute capture loops every ~2 s: trade ids stay contiguous across the loop
    boundary (REST historicalTrades around it, and the socket's frames), times never go back, and each
    loop repeats the recorded prices, quantities and sides."""
    path = shared_file(CAPTURE)
    rec = recorded_trades(path)
    n = len(rec)
    first_id = int(rec[0]["t"])
    async with Simulator(sim_config(replay=(path,), speed=200.0)) as sim, aiohttp.ClientSession() as s:
        info = (await _status(s, sim))["symbols"]["BTCUSDT"]
        assert info["replay_loop_ms"] < 3000
        frames = await _trade_frames(sim, lambda f: len(f) >= 500, within=10)
        deadline = time.monotonic() + 10
        while (await _status(s, sim))["symbols"]["BTCUSDT"]["last_trade_id"] < first_id + n + 100:
            assert time.monotonic() < deadline, "the replay did not loop"
            await asyncio.sleep(0.05)
        async with s.get(
            f"{sim.url}/api/v3/historicalTrades",
            params={"symbol": "BTCUSDT", "fromId": first_id + n - 600, "limit": 700},
        ) as r:
            across = await r.json()
    ids = [f["t"] for f in frames]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "the socket sees no gap or duplicate"
    assert all(b["T"] >= a["T"] for a, b in itertools.pairwise(frames))
    assert [t["id"] for t in across] == list(range(first_id + n - 600, first_id + n + 100))
    assert all(b["time"] >= a["time"] for a, b in itertools.pairwise(across)), "monotonic across loops"
    for t in across:
        want = rec[(t["id"] - first_id) % n]
        assert (Decimal(t["price"]), Decimal(t["qty"]), t["isBuyerMaker"]) == (
            Decimal(want["p"]),
            Decimal(want["q"]),
            want["m"],
        )
    for f in frames:
        want = rec[(f["t"] - first_id) % n]
        assert (Decimal(f["p"]), Decimal(f["q"]), f["m"]) == (Decimal(want["p"]), Decimal(want["q"]), want["m"])


async def test_vision_klines_replay_reproduces_each_row() -> None:
    """Replaying a data.binance.vision 1m klines file: the REST 1m klines of the replayed day reproduce each
    CSV row's open/high/low/close, volume, trade count and taker-buy volume, and the open times are the
    file's shifted by a whole number of minutes. The quote volumes are NOT compared: the simulator
    makes up trades inside each kline and re-derives quote volume from their prices."""
    path = shared_file(VISION)
    with zipfile.ZipFile(path) as zf:
        rows = [r for r in csv.reader(io.StringIO(zf.read(zf.namelist()[0]).decode())) if r]
    assert len(rows) == 1440
    async with Simulator(sim_config(replay=(path,))) as sim, aiohttp.ClientSession() as s:
        status = await _status(s, sim)
        assert set(status["symbols"]) == {"ADABTC"}
        info = status["symbols"]["ADABTC"]
        shift = info["replay_time_shift_ms"] - info["replay_loop_ms"]
        assert shift % 60_000 == 0
        got: list[list[Any]] = []
        start = int(rows[0][0]) + shift
        while len(got) < len(rows):
            async with s.get(
                f"{sim.url}/api/v3/klines",
                params={"symbol": "ADABTC", "interval": "1m", "startTime": start, "limit": 1000},
            ) as r:
                page = await r.json()
            got.extend(page)
            start = page[-1][0] + 60_000
    for row, k in zip(rows, got, strict=False):
        assert k[0] == int(row[0]) + shift
        assert k[6] == int(row[6]) + shift
        assert [Decimal(x) for x in k[1:6]] == [Decimal(x) for x in row[1:6]], row
        assert k[8] == int(row[8]), row
        assert Decimal(k[9]) == Decimal(row[9]), row
        low, high, ulp = Decimal(row[3]), Decimal(row[2]), Decimal("0.00000001")  # 8-decimal rounding
        assert low * Decimal(row[5]) - ulp <= Decimal(k[7]) <= high * Decimal(row[5]) + ulp, "quote volume in range"


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("absent.gz", None, "no such file"),
        ("notgzip.gz", b"this is not gzip", "cannot read"),
        (
            "badframe.gz",
            gzip.compress(b'1 {"stream":"btcusdt@trade","data":{"s":"BTCUSDT","t":1}}\n'),
            ":1: not a trade",
        ),
        ("noframes.gz", gzip.compress(b'1 {"stream":"btcusdt@depth","data":{}}\n'), "no @trade frames"),
        ("binary.gz", gzip.compress(b"1 \xff\xfe@trade\n"), "cannot read"),
        ("ADABTC-1m-2021-11-28.zip", b"PK but not a zip", "cannot read"),
        ("ADABTC-1m-2021-11-28.csv", b"1,a,b,c,d,e,f,g,h,i,j,k\n", "malformed 1m row"),
        ("ADABTC-trades-2021-11-28.csv", b"1,0.1\n", "malformed trades row"),
    ],
)
def test_bad_replay_file_names_the_file(tmp_path: Path, name: str, content: bytes | None, fragment: str) -> None:
    """A missing or malformed replay file fails the simulator's construction with a ReplayFormatError
    naming the file (never a bare gzip/zip/decimal error)."""
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ReplayFormatError) as info:
        Simulator(sim_config(replay=(path,)))
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def _write_vision_files(tmp_path: Path) -> tuple[Path, Path, list[list[str]], list[list[str]]]:
    """A small trades CSV (old format: no header, ms) and an aggTrades zip (new format: header, µs)."""
    trades = []
    for i in range(120):
        trades.append(
            [
                str(5_000_000 + i),
                f"{61000 + (i * 7) % 23}.{i % 100:02d}",
                f"0.{(i * 37) % 900 + 10:05d}",
                "0",
                str(1_723_161_255_000 + i * 250),
                "true" if i % 3 else "false",
                "true",
            ]
        )
    trades_path = tmp_path / "BTCUSDT-trades-2024-08-08.csv"
    trades_path.write_text("\n".join(",".join(r) for r in trades) + "\n")
    aggs, first = [], 900_000
    for a in range(60):
        count = 1 + a % 3
        aggs.append(
            [
                str(400_000 + a),
                f"2600.{a:02d}",
                f"{0.25 * count:.4f}",
                str(first),
                str(first + count - 1),
                str((1_723_161_255_000 + a * 500) * 1000),
                "true" if a % 2 else "false",
                "true",
            ]
        )
        first += count
    agg_path = tmp_path / "ETHUSDT-aggTrades-2024-08-08.zip"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(
        [
            [
                "agg_trade_id",
                "price",
                "quantity",
                "first_trade_id",
                "last_trade_id",
                "transact_time",
                "is_buyer_maker",
                "is_best_match",
            ],
            *aggs,
        ]
    )
    with zipfile.ZipFile(agg_path, "w") as zf:
        zf.writestr("ETHUSDT-aggTrades-2024-08-08.csv", buf.getvalue())
    return trades_path, agg_path, trades, aggs


async def test_vision_trades_and_agg_trades_files_replay(tmp_path: Path) -> None:
    """data.binance.vision trades and aggTrades files replay with their ids, prices, quantities and sides:
    REST trades equal the trades file row for row; REST aggTrades keep the recorded aggregate ids,
    first/last trade ids and quantities (µs times in the newer format are read as ms)."""
    trades_path, agg_path, trades, aggs = _write_vision_files(tmp_path)
    async with Simulator(sim_config(replay=(trades_path, agg_path), speed=100.0)) as sim, aiohttp.ClientSession() as s:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = await _status(s, sim)
            done = (
                status["symbols"]["ETHUSDT"]["last_agg_id"] >= 400_059
                and status["symbols"]["BTCUSDT"]["last_trade_id"] >= 5_000_119
            )
            if done:
                break
            await asyncio.sleep(0.05)
        assert done, status
        async with s.get(
            f"{sim.url}/api/v3/historicalTrades", params={"symbol": "BTCUSDT", "fromId": "5000000", "limit": "120"}
        ) as r:
            got = await r.json()
        async with s.get(
            f"{sim.url}/api/v3/aggTrades", params={"symbol": "ETHUSDT", "fromId": "400000", "limit": "60"}
        ) as r:
            got_aggs = await r.json()
    assert [g["id"] for g in got] == [int(t[0]) for t in trades]
    assert [Decimal(g["price"]) for g in got] == [Decimal(t[1]) for t in trades]
    assert [Decimal(g["qty"]) for g in got] == [Decimal(t[2]) for t in trades]
    assert [g["isBuyerMaker"] for g in got] == [t[5] == "true" for t in trades]
    gaps = {b["time"] - a["time"] for a, b in itertools.pairwise(got)}
    assert gaps <= {2, 3}, "250 ms apart at speed 100"
    assert [(g["a"], g["f"], g["l"]) for g in got_aggs] == [(int(a[0]), int(a[3]), int(a[4])) for a in aggs]
    assert [Decimal(g["q"]) for g in got_aggs] == [Decimal(a[2]) for a in aggs]
    assert [Decimal(g["p"]) for g in got_aggs] == [Decimal(a[1]) for a in aggs]
    assert [g["m"] for g in got_aggs] == [a[6] == "true" for a in aggs]


def _capture_line(trade_id: int, t_ms: int) -> str:
    frame = {
        "stream": "btcusdt@trade",
        "data": {
            "e": "trade",
            "E": t_ms,
            "s": "BTCUSDT",
            "t": trade_id,
            "p": "61000.10000000",
            "q": "0.01000000",
            "T": t_ms,
            "m": True,
            "M": True,
        },
    }
    return f"{t_ms * 1_000_000} {json.dumps(frame)}\n"


def test_capture_overlap_is_deduplicated_and_one_file_per_symbol(tmp_path: Path) -> None:
    """A capture holding some frames twice (a recorder reconnect) replays each id once; two files for the
    same symbol are refused with a message naming both."""
    from exchangesim.engine.market import Market
    from exchangesim.engine.replay import load_capture

    path = tmp_path / "overlap.txt"
    ids = [*range(100, 110), *range(105, 115)]
    path.write_text("".join(_capture_line(i, 1_723_161_255_000 + (i - 100) * 10) for i in ids))
    (rec,) = load_capture(path)
    assert rec.trades.ids.tolist() == list(range(100, 115))
    with pytest.raises(ReplayFormatError, match=r"BTCUSDT is already replayed from .*overlap\.txt"):
        Market(symbols=(), rate=1, seed=1, replay=(path, path))
