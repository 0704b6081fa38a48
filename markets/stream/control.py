"""Commands to a running stream, received over the channel layer: ``feed.drop`` from ``manage.py feed drop`` and
the live page's staff button (sent by ``markets.control``, which owns the group name, the drop modes and the
acknowledgement).

Membership of the control group lives in Redis, so it can vanish under the stream: a Redis restart forgets it, and
channels-redis drops a member ``group_expiry`` seconds (a day by default) after its last ``group_add``. So the
listener rejoins with a fresh channel after any channel-layer error (retrying with back-off while Redis is away),
and re-adds its channel on a timer of at most half the group expiry (``group_add`` sets the member's time anew and
the group key's expiry). A drop it takes is acknowledged on the sender's ``reply_to`` channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from ..control import DROP, DROP_MODES, MAX_DROP_SECONDS, control_group, drop_ack, past_stale_connections

log = logging.getLogger(__name__)
RETRY_FIRST_SECONDS = 0.5  # after a channel-layer error, the first retry; doubling up to the next
RETRY_MAX_SECONDS = 5.0  # so a Redis that is back is noticed within 5 s
LEAVE_SECONDS = 1.0  # at the end, how long leaving the group may take


async def receive_commands(
    exchange: str, drop: Callable[[float, str], None], *, layer: Any = None, rejoin_seconds: float | None = None
) -> None:
    """Listen on ``exchange``'s control group until cancelled; each valid ``feed.drop`` calls ``drop(seconds,
    mode)`` and is acknowledged to its sender. The membership is renewed every ``rejoin_seconds`` (default
    ``FEED_CONTROL_REJOIN_SECONDS``, at most half the layer's ``group_expiry``) and after any channel-layer error.
    ``layer`` defaults to the project's; without one it returns at once (the stream runs, it just cannot be told
    anything)."""
    layer = layer if layer is not None else get_channel_layer()
    if layer is None:
        return
    every = settings.FEED_CONTROL_REJOIN_SECONDS if rejoin_seconds is None else rejoin_seconds
    every = min(every, getattr(layer, "group_expiry", 86400) / 2)
    await ControlListener(layer, exchange, drop, every).run()


class ControlListener:
    """One stream's membership of its control group, and the commands that reach it."""

    def __init__(self, layer: Any, exchange: str, drop: Callable[[float, str], None], every: float) -> None:
        self.layer = layer
        self.exchange = exchange
        self.group = control_group(exchange)
        self.drop = drop
        self.every = every
        self.name = f"{socket.gethostname()} pid {os.getpid()}"  # what the acknowledgement says answered
        self.channel: str | None = None  # None: make a fresh one at the next join
        self._stale: list[str] = []  # earlier channels, to take out of the group once Redis answers
        self._failures = 0  # in a row, for the back-off
        self._down_since: float | None = None  # loop time of the first failure of an outage

    async def run(self) -> None:
        """Join, then take commands and renew the membership side by side; after an error, back off and rejoin with
        a fresh channel; until cancelled, then leave the group."""
        try:
            while True:
                if await self._join():
                    await self._serve()
                if self._failures:
                    await asyncio.sleep(min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (self._failures - 1)))
        finally:
            await self._leave()

    async def _join(self) -> bool:
        """Add our channel (a fresh one after an error) to the group, and take the stale ones out."""
        loop = asyncio.get_running_loop()
        if self.channel is None:
            self.channel = await self.layer.new_channel()
        try:
            await past_stale_connections(lambda: self.layer.group_add(self.group, self.channel))
            while self._stale:
                await self.layer.group_discard(self.group, self._stale[-1])
                self._stale.pop()
        except Exception as exc:  # Redis away: retried with back-off, logged once per outage
            self._failed("cannot join its control group", exc)
            return False
        if self._down_since is not None:
            log.info(
                "%s: control group %s rejoined after %.1f s: feed commands reach this stream again",
                self.exchange,
                self.group,
                loop.time() - self._down_since,
            )
            self._down_since = None
        return True

    async def _serve(self) -> None:
        """Receive commands and renew the membership until the channel layer fails under either. Renewing runs
        beside the receive, never by interrupting it: a receive cancelled as Redis answers could lose the command."""
        tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._renew())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            # bounded: a stream's stop never waits on a receive that outlives its cancellation
            _, stuck = await asyncio.wait(tasks, timeout=LEAVE_SECONDS)
            for task in stuck:
                log.warning(
                    "%s: the control listener's %s did not end within %g s of its cancellation (left to end on its "
                    "own); it was at %s",
                    self.exchange,
                    task.get_coro().__qualname__,
                    LEAVE_SECONDS,
                    where(task),
                )
        error = next(iter(done)).exception()
        self._lost(error or RuntimeError("the control listener ended"))

    async def _listen(self) -> None:
        """Take commands until the channel layer fails (its error is raised)."""
        while True:
            message = await self.layer.receive(self.channel)
            self._failures = 0
            await self._handle(message)

    async def _renew(self) -> None:
        """Add the channel again every ``every`` seconds: its time in the group starts anew, and a group that Redis
        forgot without failing a receive (a restart between two, a flush) has it again."""
        while True:
            await asyncio.sleep(self.every)
            await past_stale_connections(lambda: self.layer.group_add(self.group, self.channel))
            self._failures = 0

    async def _handle(self, message: dict[str, Any]) -> None:
        seconds, mode, reply = message.get("seconds"), message.get("mode", "close"), message.get("reply_to")
        valid = isinstance(seconds, int | float) and 0 < seconds <= MAX_DROP_SECONDS and mode in DROP_MODES
        if message.get("type") != DROP or not valid:
            log.warning("%s: bad feed command ignored: %r", self.exchange, message)
            return
        try:
            self.drop(float(seconds), mode)
        except Exception:  # a drop that fails is not acknowledged; the listener goes on
            log.exception("%s: the requested drop failed", self.exchange)
            return
        if not reply:  # a sender that does not wait for an answer
            return
        try:
            ack = drop_ack(self.exchange, self.name, float(seconds), mode)
            await past_stale_connections(lambda: self.layer.send(reply, ack))
        except Exception as exc:  # the sender will say no stream acknowledged; the drop happens all the same
            log.warning("%s: the drop could not be acknowledged to %s: %s", self.exchange, reply, _described(exc))

    def _lost(self, exc: BaseException) -> None:
        """The channel layer failed under the receive or the renewal: rejoin with a fresh channel. The old one may be
        gone from the group, or hold a command caught mid-receive that Redis would hand over late, after its sender
        gave up waiting; it leaves the group once Redis answers."""
        if self.channel is not None:
            self._stale.append(self.channel)
        self.channel = None
        self._failed("lost its control channel", exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        self._failures += 1
        if self._down_since is None:
            self._down_since = asyncio.get_running_loop().time()
            log.warning(
                "%s: %s (%s): feed commands cannot reach this stream until the channel layer (Redis) answers; "
                "retrying every %g s at most",
                self.exchange,
                what,
                _described(exc),
                RETRY_MAX_SECONDS,
            )
        else:
            log.debug("%s: %s again (%s)", self.exchange, what, _described(exc))

    async def _leave(self) -> None:
        """Out of the group on the way out (best effort, briefly), so that no command is sent to a stopped stream."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(LEAVE_SECONDS):
                for channel in [*self._stale, *([self.channel] if self.channel else [])]:
                    await self.layer.group_discard(self.group, channel)


def where(task: asyncio.Task[Any]) -> str:
    """Where ``task`` waits: the innermost frames of its await chain, ``module:line`` each (``?``: finished)."""
    frames: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None and len(frames) < 12:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(f"{frame.f_globals.get('__name__', '?')}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None) or getattr(coro, "gi_yieldfrom", None)
    return " > ".join(frames[-6:]) or "?"


def _described(exc: BaseException) -> str:
    """``ConnectionError: Connection reset by peer`` (redis-py's own repr says only ``network:ConnectionError``)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
