"""Talking to the Binance venue's market streams in the stream tests: reading frames and control replies,
and checking an aggTrade or trade payload field by field.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from decimal import Decimal
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

AGG_KEYS = ["e", "E", "s", "a", "p", "q", "f", "l", "T", "m", "M"]
TRADE_KEYS = ["e", "E", "s", "t", "p", "q", "T", "m", "M"]
KLINE_KEYS = ["t", "T", "s", "i", "f", "L", "o", "c", "h", "l", "v", "n", "x", "q", "V", "Q", "B"]
DEC8 = re.compile(r"^\d+\.\d{8}$")


def is_int(v: object) -> bool:
    """An int that is not a bool (JSON's true would pass ``isinstance(v, int)``)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_reply(msg: object) -> bool:
    """A reply to a control message (as opposed to a market data frame)."""
    return isinstance(msg, dict) and ("result" in msg or "code" in msg)


async def recv_json(ws: websockets.ClientConnection, within: float = 3.0) -> Any:
    """The next message, parsed; fails when none comes ``within`` seconds."""
    return json.loads(await asyncio.wait_for(ws.recv(), within))


async def next_reply(ws: websockets.ClientConnection, frames: list[Any] | None = None, within: float = 3.0) -> Any:
    """The next control reply; data frames met on the way are appended to ``frames``."""
    deadline = time.monotonic() + within
    while True:
        msg = await recv_json(ws, max(0.01, deadline - time.monotonic()))
        if is_reply(msg):
            return msg
        if frames is not None:
            frames.append(msg)


async def send_request(ws: websockets.ClientConnection, req: dict[str, Any], frames: list[Any] | None = None) -> Any:
    """Send a control message and wait for its reply (data frames met on the way go to ``frames``)."""
    await ws.send(json.dumps(req))
    return await next_reply(ws, frames)


async def collect(ws: websockets.ClientConnection, done: Any, within: float = 4.0) -> list[Any]:
    """Frames until ``done(frames)`` is true; fails when the deadline passes first."""
    frames: list[Any] = []
    deadline = time.monotonic() + within
    while not done(frames):
        left = deadline - time.monotonic()
        assert left > 0, f"condition not met within {within}s; got {len(frames)} frames"
        frames.append(await recv_json(ws, left))
    return frames


async def until_closed(ws: websockets.ClientConnection) -> tuple[list[Any], ConnectionClosed]:
    """Every message until the connection closes, and how it closed (fails if it stays silent 3 s)."""
    got: list[Any] = []
    try:
        while True:
            got.append(await recv_json(ws))
    except ConnectionClosed as exc:
        return got, exc


def check_agg(d: dict[str, Any], symbol: str) -> None:
    """An aggTrade payload of ``symbol``: Binance's keys in its order, ints, 8-decimal strings, ids in order."""
    assert list(d) == AGG_KEYS
    assert d["e"] == "aggTrade"
    assert d["s"] == symbol
    for k in ("E", "a", "f", "l", "T"):
        assert is_int(d[k]), (k, d[k])
    for k in ("p", "q"):
        assert DEC8.match(d[k]), (k, d[k])
        assert Decimal(d[k]) > 0, (k, d[k])
    assert d["f"] <= d["l"]
    assert d["T"] <= d["E"]
    assert isinstance(d["m"], bool)
    assert d["M"] is True


def check_trade(d: dict[str, Any], symbol: str) -> None:
    """A trade payload of ``symbol``: Binance's keys in its order, ints, 8-decimal strings."""
    assert list(d) == TRADE_KEYS
    assert d["e"] == "trade"
    assert d["s"] == symbol
    for k in ("E", "t", "T"):
        assert is_int(d[k]), (k, d[k])
    for k in ("p", "q"):
        assert DEC8.match(d[k]), (k, d[k])
        assert Decimal(d[k]) > 0, (k, d[k])
    assert d["T"] <= d["E"]
    assert isinstance(d["m"], bool)
    assert d["M"] is True
