"""What the venue feed tests' socket clients share: collecting messages in the background, waiting for a
condition on them, and a connection that sends the first messages and stops the collector at the end."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import aiohttp


class SocketClient:
    """Collects the messages of an aiohttp socket in the background with the subclass's ``_run``."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.msgs: list[Any] = []
        self.raw: list[str] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        raise NotImplementedError

    async def wait(self, cond: Callable[[], bool], within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not cond():
            assert time.monotonic() < deadline, f"condition not met within {within}s ({len(self.msgs)} messages)"
            await asyncio.sleep(0.01)


C = TypeVar("C", bound=SocketClient)


@contextlib.asynccontextmanager
async def connected(make: Callable[[aiohttp.ClientWebSocketResponse], C], url: str, *first: str) -> AsyncIterator[C]:
    """A client of the socket at ``url`` that has sent the texts ``first``."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        client = make(ws)
        for text in first:
            await ws.send_str(text)
        try:
            yield client
        finally:
            client._task.cancel()
