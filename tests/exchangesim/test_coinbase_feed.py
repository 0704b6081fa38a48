"""The Coinbase feed at /coinbase/ws: subscribe deadline, subscriptions reply, last_match then contiguous
matches, heartbeats, errors, unsubscribe, the socket faults (close, reset, stall, refuse, corrupt), and
truth equal to what REST and the feed served."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import Any

import aiohttp
import pytest

from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.socket_client import SocketClient, connected
from tests.exchangesim.test_coinbase import ISO_US, UUID4, cb_get, truth

SUB = {"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["matches", "heartbeat"]}


class Feed(SocketClient):
    """A feed client collecting every message (and how the socket ended) in the background."""

    msgs: list[tuple[float, dict[str, Any]]]

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ended: aiohttp.WSMessage | None = None
        super().__init__(ws)

    async def _run(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.raw.append(msg.data)
                with contextlib.suppress(ValueError):
                    self.msgs.append((time.monotonic(), json.loads(msg.data)))
        self.ended = msg if "msg" in locals() else None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for _, m in self.msgs if m.get("type") == kind]


def feed(sim: Simulator, sub: dict[str, Any] | None = SUB) -> contextlib.AbstractAsyncContextManager[Feed]:
    first = () if sub is None else (json.dumps(sub),)
    return connected(Feed, f"{sim.venue_url('coinbase', ws=True)}/ws", *first)


async def _post(sim: Simulator, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(f"{sim.url}{path}", json=body) as r:
        return r.status, await r.json()


async def test_subscribe_last_match_matches_and_heartbeats() -> None:
    """The reply lists the subscriptions; then last_match (the latest trade), then a match for every trade
    with contiguous ids and increasing sequence, Coinbase's fields and formats; heartbeats every second
    carry the last trade id seen."""
    async with Simulator(sim_config()) as sim, feed(sim) as f:
        await f.wait(lambda: len(f.of("heartbeat")) >= 3 and len(f.of("match")) >= 20)
    first = f.msgs[0][1]
    assert first == {
        "type": "subscriptions",
        "channels": [
            {"name": "matches", "product_ids": ["BTC-USD"]},
            {"name": "heartbeat", "product_ids": ["BTC-USD"]},
        ],
    }
    assert f.msgs[1][1]["type"] == "last_match"
    trades = [m for _, m in f.msgs if m["type"] in ("last_match", "match")]
    assert [t["type"] for t in trades[1:]] == ["match"] * (len(trades) - 1)
    ids = [t["trade_id"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    seqs = [t["sequence"] for t in trades]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    for t in trades:
        assert list(t) == [
            "type",
            "trade_id",
            "maker_order_id",
            "taker_order_id",
            "side",
            "size",
            "price",
            "product_id",
            "sequence",
            "time",
        ]
        assert UUID4.fullmatch(t["maker_order_id"])
        assert UUID4.fullmatch(t["taker_order_id"])
        assert t["side"] in ("buy", "sell")
        assert t["product_id"] == "BTC-USD"
        assert ISO_US.fullmatch(t["time"])
        assert len(t["price"].split(".")[1]) == 2
        assert len(t["size"].split(".")[1]) == 8
    beats = [(at, m) for at, m in f.msgs if m["type"] == "heartbeat"]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(beats)]
    assert all(0.8 < g < 1.3 for g in gaps), gaps
    for at, beat in beats:  # last_trade_id is the newest trade sent before the heartbeat
        before = [t["trade_id"] for a, t in f.msgs if a <= at and t["type"] in ("match", "last_match")]
        assert beat["last_trade_id"] == before[-1]
        assert beat["product_id"] == "BTC-USD"
        assert ISO_US.fullmatch(beat["time"])


async def test_channel_objects_unsubscribe_and_errors() -> None:
    """Channels may be objects with their own product_ids; unsubscribe removes products or a whole channel;
    bad messages get {"type":"error","message","reason"} and the socket stays usable."""
    async with (
        Simulator(sim_config()) as sim,
        feed(
            sim, {"type": "subscribe", "channels": [{"name": "heartbeat", "product_ids": ["ETH-USD", "BTC-USD"]}]}
        ) as f,
    ):
        await f.wait(lambda: len(f.of("heartbeat")) >= 2)
        assert f.of("subscriptions")[0]["channels"] == [{"name": "heartbeat", "product_ids": ["ETH-USD", "BTC-USD"]}]
        assert not f.of("match")
        for bad, reason in [
            ("{nope", None),
            ({"type": "hello"}, "hello"),
            ({"type": "subscribe", "product_ids": ["BTC-USD"], "channels": ["level3"]}, "level3"),
            ({"type": "subscribe", "product_ids": ["XXX-USD"], "channels": ["matches"]}, "XXX-USD"),
            ({"type": "subscribe", "product_ids": ["BTC-USD"]}, "channels"),
        ]:
            await f.ws.send_str(bad if isinstance(bad, str) else json.dumps(bad))
            errors = len(f.of("error"))
            await f.wait(lambda n=errors: len(f.of("error")) > n)
            err = f.of("error")[-1]
            assert set(err) == {"type", "message", "reason"}
            assert reason is None or reason in err["reason"]
        await f.ws.send_str(json.dumps({"type": "unsubscribe", "product_ids": ["ETH-USD"], "channels": ["heartbeat"]}))
        await f.wait(lambda: len(f.of("subscriptions")) == 2)
        assert f.of("subscriptions")[-1]["channels"] == [{"name": "heartbeat", "product_ids": ["BTC-USD"]}]
        await f.ws.send_str(json.dumps({"type": "unsubscribe", "channels": ["heartbeat"]}))
        await f.wait(lambda: len(f.of("subscriptions")) == 3)
        assert f.of("subscriptions")[-1]["channels"] == []


async def test_subscribe_deadline() -> None:
    """A socket that does not subscribe in time gets an error and is closed; one that does stays open."""
    async with Simulator(sim_config(subscribe_timeout=0.4)) as sim, feed(sim, None) as idle, feed(sim) as busy:
        await idle.wait(lambda: idle._task.done(), within=3)
        assert idle.of("error")[0]["message"] == "Failed to subscribe"
        assert idle.ws.close_code == 1008
        await asyncio.sleep(0.3)  # past the deadline: nothing to wait for but the clock
        assert not busy.ws.closed
        assert busy.of("match")


@pytest.mark.parametrize("mode", ["close", "reset"])
async def test_drop_close_and_reset(mode: str) -> None:
    """/_sim/ws/drop {venue: coinbase} closes (1001) or resets every feed socket and leaves Binance's alone;
    with seconds, reconnects are refused (503) that long."""
    async with (
        Simulator(sim_config()) as sim,
        feed(sim) as f,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade") as binance,
    ):
        await f.wait(lambda: len(f.of("match")) > 2)
        st, body = await _post(sim, "/_sim/ws/drop", {"venue": "coinbase", "mode": mode, "seconds": 1})
        assert (st, body["sockets"]) == (200, 1)
        await f.wait(lambda: f._task.done())
        if mode == "close":
            assert f.ws.close_code == 1001
        else:
            assert f.ws.close_code != 1001
        assert not binance.closed
        dropped_at = time.monotonic()
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await http.ws_connect(f"{sim.venue_url('coinbase', ws=True)}/ws")
        assert exc.value.status == 503
        while True:  # refused for about a second, then accepted again
            try:
                ws = await http.ws_connect(f"{sim.venue_url('coinbase', ws=True)}/ws")
                break
            except aiohttp.WSServerHandshakeError:
                assert time.monotonic() - dropped_at < 3
                await asyncio.sleep(0.05)
        assert time.monotonic() - dropped_at > 0.8
        await ws.send_str(json.dumps(SUB))
        assert json.loads((await ws.receive()).data)["type"] == "subscriptions"
        await ws.close()


async def test_stall_sends_nothing_then_resumes() -> None:
    """A stall keeps the socket open and silent (no match, no heartbeat) for its seconds, then frames flow."""
    async with Simulator(sim_config()) as sim, feed(sim) as f:
        await f.wait(lambda: f.of("heartbeat"))
        st, _ = await _post(sim, "/_sim/ws/drop", {"venue": "coinbase", "mode": "stall", "seconds": 1.2})
        stalled_at = time.monotonic()
        assert st == 200
        await f.wait(lambda: any(at > stalled_at + 1.2 for at, _ in f.msgs), within=4)
        quiet = [m for at, m in f.msgs if stalled_at + 0.1 < at < stalled_at + 1.1]
        assert quiet == []
        assert not f.ws.closed


async def test_corrupt_duplicate_on_coinbase() -> None:
    """/_sim/ws/corrupt with venue coinbase duplicates one feed frame."""
    async with Simulator(sim_config()) as sim, feed(sim) as f:
        await f.wait(lambda: f.of("match"))
        assert (await _post(sim, "/_sim/ws/corrupt", {"venue": "coinbase", "kind": "duplicate"}))[0] == 200
        await f.wait(lambda: len(f.raw) != len(set(f.raw)))


async def test_truth_equals_feed_and_rest() -> None:
    """/_sim/truth for a Coinbase product equals the matches received and the REST trades of those ids."""
    async with (
        Simulator(sim_config()) as sim,
        feed(sim, {**SUB, "channels": ["matches"]}) as f,
        aiohttp.ClientSession() as http,
    ):
        await f.wait(lambda: len(f.of("match")) >= 40)
        got = f.of("match")[:40]
        rows = await truth(
            http, sim, venue="coinbase", symbol="BTC-USD", from_id=got[0]["trade_id"], to_id=got[-1]["trade_id"]
        )
        _, rest, _ = await cb_get(http, sim, "/products/BTC-USD/trades", after=got[-1]["trade_id"] + 1, limit=40)
        by_time = await truth(
            http, sim, venue="coinbase", symbol="BTC-USD", start_ms=rows[0]["time_ms"], end_ms=rows[-1]["time_ms"]
        )
    assert [(r["trade_id"], r["time"], r["side"], r["size"]) for r in rows] == [
        (m["trade_id"], m["time"], m["side"], m["size"]) for m in got
    ]
    assert all(float(r["price"]) == float(m["price"]) for r, m in zip(rows, got, strict=True))
    assert [{k: v for k, v in r.items() if k not in ("taker_side", "time_ms")} for r in rows] == rest[::-1]
    assert [r["trade_id"] for r in by_time][: len(rows)] == [r["trade_id"] for r in rows]
