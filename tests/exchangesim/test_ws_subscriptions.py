"""Binance market streams' control messages over real sockets: SUBSCRIBE, LIST_SUBSCRIPTIONS, UNSUBSCRIBE,
SET_PROPERTY/GET_PROPERTY, their errors, and a bad stream name in the path.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
import websockets

from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.ws_frames import check_agg, check_trade, collect, next_reply, recv_json, send_request


async def test_subscribe_list_unsubscribe() -> None:
    """/ws/0 + SUBSCRIBE answers {"result":null,"id":1} then data flows; LIST_SUBSCRIPTIONS lists in
    subscription order; UNSUBSCRIBE stops that stream while the others go on."""
    async with Simulator(sim_config(ws_max_incoming_per_s=100)) as sim, websockets.connect(f"{sim.ws_url}/ws/0") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1}))
        first = await asyncio.wait_for(ws.recv(), 3)
        assert first == '{"result":null,"id":1}'  # the exact bytes Binance sends
        data = await recv_json(ws)
        check_agg(data, "BTCUSDT")

        assert await send_request(ws, {"method": "SUBSCRIBE", "params": ["ETHUSDT@trade"], "id": "abc1"}) == {
            "result": None,
            "id": "abc1",
        }
        assert await send_request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3}) == {
            "result": ["btcusdt@aggTrade", "ethusdt@trade"],
            "id": 3,
        }

        assert await send_request(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 312}) == {
            "result": None,
            "id": 312,
        }
        unsubscribed_ms = time.time_ns() // 1_000_000
        assert await send_request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": None}) == {
            "result": ["ethusdt@trade"],
            "id": None,
        }
        after = await collect(
            ws, lambda fs: sum(f.get("e") == "trade" and f["E"] > unsubscribed_ms + 200 for f in fs) >= 5
        )
    late_aggs = [f for f in after if f.get("e") == "aggTrade" and f["E"] > unsubscribed_ms]
    assert late_aggs == [], "no aggTrade made after the UNSUBSCRIBE may be sent"
    for f in after:
        if f.get("e") == "trade":
            check_trade(f, "ETHUSDT")


async def test_set_and_get_property_combined() -> None:
    """GET_PROPERTY combined is false on /ws and true on /stream; SET_PROPERTY combined true wraps the
    following frames as {"stream","data"}, and false unwraps them again."""
    async with Simulator(sim_config(ws_max_incoming_per_s=100)) as sim:
        async with websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@trade") as ws:
            assert await send_request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}) == {
                "result": True,
                "id": 2,
            }
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
            assert await send_request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2}) == {
                "result": False,
                "id": 2,
            }
            assert await send_request(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5}) == {
                "result": None,
                "id": 5,
            }
            switched_ms = time.time_ns() // 1_000_000
            assert await send_request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 6}) == {
                "result": True,
                "id": 6,
            }
            wrapped = await collect(ws, lambda fs: sum("stream" in f and f["data"]["E"] > switched_ms for f in fs) >= 5)
            late = [f for f in wrapped if "stream" in f and f["data"]["E"] > switched_ms]
            for f in late:
                assert list(f) == ["stream", "data"]
                assert f["stream"] == "btcusdt@trade"
                check_trade(f["data"], "BTCUSDT")
            assert not [f for f in wrapped if "stream" not in f and f["E"] > switched_ms]

            assert await send_request(ws, {"method": "SET_PROPERTY", "params": ["combined", False], "id": 7}) == {
                "result": None,
                "id": 7,
            }
            switched_ms = time.time_ns() // 1_000_000
            raw = await collect(ws, lambda fs: sum("stream" not in f and f["E"] > switched_ms for f in fs) >= 5)
            assert not [f for f in raw if "stream" in f and f["data"]["E"] > switched_ms]
            for f in raw:
                if "stream" not in f:
                    check_trade(f, "BTCUSDT")


async def test_control_message_errors() -> None:
    """Error replies as the reference gives them: invalid JSON is code 3 (no id), an unknown method
    code 2, an unknown property code 0, a non-boolean value code 1; the connection stays usable."""
    async with Simulator(sim_config(ws_max_incoming_per_s=100)) as sim, websockets.connect(f"{sim.ws_url}/ws/0") as ws:
        await ws.send("not json")
        assert await next_reply(ws) == {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
        await ws.send("{\n  ")
        bad = await next_reply(ws)
        assert bad["code"] == 3
        assert "id" not in bad
        assert re.fullmatch(r"Invalid JSON: .+ at line 2 column \d+", bad["msg"]), bad

        unknown = await send_request(ws, {"method": "PING", "id": 7})
        assert unknown["code"] == 2
        assert unknown["id"] == 7
        assert unknown["msg"].startswith("Invalid request: "), unknown
        assert "PING" in unknown["msg"]

        bad_stream = await send_request(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@nonsense"], "id": 8})
        assert bad_stream["code"] == 2
        assert bad_stream["msg"].startswith("Invalid request: ")

        assert await send_request(ws, {"method": "GET_PROPERTY", "params": ["compressed"], "id": 9}) == {
            "code": 0,
            "msg": "Unknown property",
            "id": 9,
        }
        assert await send_request(ws, {"method": "SET_PROPERTY", "params": ["nope", True], "id": 10}) == {
            "code": 0,
            "msg": "Unknown property",
            "id": 10,
        }
        assert await send_request(ws, {"method": "SET_PROPERTY", "params": ["combined", "true"], "id": 11}) == {
            "code": 1,
            "msg": "Invalid value type: expected Boolean",
            "id": 11,
        }
        assert await send_request(ws, {"method": "SET_PROPERTY", "params": ["combined", 1], "id": 12}) == {
            "code": 1,
            "msg": "Invalid value type: expected Boolean",
            "id": 12,
        }
        # none of the errors changed anything
        assert await send_request(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 13}) == {
            "result": False,
            "id": 13,
        }
        assert await send_request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 14}) == {"result": [], "id": 14}


async def test_ws_path_with_a_bad_stream_name_is_refused() -> None:
    """/ws/<name> with something that looks like a stream but is not one is refused (400, code 2);
    /ws/<anything else> is an empty connection waiting for SUBSCRIBE (ccxt opens /ws/0)."""
    async with Simulator(sim_config()) as sim:
        for bad in ("btcusdt@nonsense", "!miniTicker@arr@1000ms", "btcusdt@kline_7m"):
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(f"{sim.ws_url}/ws/{bad}"):
                    pass
            assert info.value.response.status_code == 400
            assert json.loads(info.value.response.body)["code"] == 2
        async with websockets.connect(f"{sim.ws_url}/ws/0") as ws:
            assert await send_request(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {"result": [], "id": 1}
