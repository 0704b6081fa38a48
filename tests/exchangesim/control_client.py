"""The simulator's control API and its Binance stream as the control tests use them: JSON posts, status,
truth, a background reader of raw frames, and how a socket ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from exchangesim.server import Simulator


async def post_json(http: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    """POST ``body`` (JSON, or a string sent as it is) to ``url``: the status and the JSON answer."""
    data = body if isinstance(body, str) else json.dumps(body)
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.json()


async def sim_status(http: aiohttp.ClientSession, sim: Simulator) -> dict[str, Any]:
    """GET /_sim/status, which must succeed."""
    async with http.get(f"{sim.url}/_sim/status") as r:
        assert r.status == 200
        return await r.json()


async def sim_truth(http: aiohttp.ClientSession, sim: Simulator, **params: object) -> list[dict[str, Any]]:
    """GET /_sim/truth with ``params``: the NDJSON rows, parsed."""
    async with http.get(f"{sim.url}/_sim/truth", params={k: str(v) for k, v in params.items()}) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in (await r.text()).splitlines() if line]


class Reader:
    """Collects every raw text frame of a websockets client, with arrival times, in the background."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.frames: list[tuple[float, str]] = []
        self.closed: BaseException | None = None
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for text in self.ws:
                self.frames.append((time.monotonic(), str(text)))
        except BaseException as exc:  # the close is what some tests look at
            self.closed = exc
            raise

    async def wait(self, cond: Any, within: float = 4.0) -> None:
        """Until ``cond()`` is true; fails when the deadline passes first."""
        deadline = time.monotonic() + within
        while not cond():
            assert time.monotonic() < deadline, f"condition not met within {within}s ({len(self.frames)} frames)"
            assert not self._task.done() or cond(), f"the socket ended: {self.closed!r}"
            await asyncio.sleep(0.01)

    def data(self) -> list[dict[str, Any]]:
        """Every frame so far, parsed."""
        return [json.loads(t) for _, t in self.frames]

    async def stop(self) -> None:
        """Stop reading (the socket itself is closed by its owner)."""
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


@contextlib.asynccontextmanager
async def streaming(sim: Simulator, path: str) -> AsyncIterator[Reader]:
    """A socket on ``path`` of the Binance venue, read in the background while the block runs."""
    async with websockets.connect(f"{sim.ws_url}{path}") as ws:
        reader = Reader(ws)
        try:
            yield reader
        finally:
            await reader.stop()


async def until_closed(ws: websockets.ClientConnection) -> ConnectionClosed:
    """Read until the connection closes; how it closed (fails if it stays silent 3 s)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 3)
    except ConnectionClosed as exc:
        return exc


async def try_connect(url: str) -> int | dict[str, Any]:
    """The refusal's HTTP status, or the first frame of an accepted connection."""
    try:
        async with websockets.connect(url) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 3))
    except InvalidStatus as exc:
        return exc.response.status_code


def frame_ids(frames: list[dict[str, Any]]) -> list[int]:
    """The trade id (``t``) or aggregate id (``a``) of each frame."""
    return [f["t"] if "t" in f else f["a"] for f in frames]


def contiguous(ids: list[int]) -> bool:
    """Whether ``ids`` go up by one, with no gap or repeat."""
    return all(b == a + 1 for a, b in itertools.pairwise(ids))
