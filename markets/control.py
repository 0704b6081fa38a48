"""Commands to a running stream process over the channel layer (``manage.py feed drop``, the live page's button).

The wire the web and the stream share: the command's group, its drop modes and the acknowledgement. A drop is sent
to the ``feed.<exchange>`` group with a ``reply_to`` channel of the sender's own; every stream of that exchange that
takes it answers there with ``feed.drop.ack``, so the sender knows the command arrived (after a Redis restart a
stream that has not yet rejoined its group would otherwise miss it silently). The stream package
(``markets.stream.control``) receives what this module sends; this module never imports the stream, so the web
process that asks for a drop does not load it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .venues import KNOWN_EXCHANGES

DROP_MODES = ("close", "stall")  # close the socket now, or lose its frames until the watchdog gives it up
MAX_DROP_SECONDS = 3600.0
DROP = "feed.drop"
DROP_ACK = "feed.drop.ack"
# Once one stream has acknowledged, how long more to listen for the others of the exchange (several stream workers
# may share it): they all got the command in the same group send, so their answers arrive close together.
MORE_ACKS_SECONDS = 0.25
STALE_CONNECTION_RETRIES = 3  # see past_stale_connections
T = TypeVar("T")


def control_group(exchange: str) -> str:
    """The channel-layer group the stream of ``exchange`` listens to for commands."""
    return f"feed.{exchange}"


def drop_ack(exchange: str, stream: str, seconds: float, mode: str) -> dict[str, Any]:
    """The stream's answer to a drop it took: which stream (host and process), what it does."""
    return {"type": DROP_ACK, "exchange": exchange, "stream": stream, "seconds": seconds, "mode": mode}


class ControlUnavailable(Exception):
    """The channel layer (Redis) cannot be reached: the command went nowhere."""


class NotAcknowledged(Exception):
    """The command was sent, but no stream of the exchange answered within the wait."""


def drop_problems(exchange: str, seconds: float, mode: str) -> dict[str, str]:
    """What is wrong with a drop request, by field; empty when it is fine."""
    problems = {}
    if exchange not in KNOWN_EXCHANGES:
        problems["exchange"] = f"unknown exchange {exchange!r}; known: {', '.join(KNOWN_EXCHANGES)}"
    if not 0 < seconds <= MAX_DROP_SECONDS:
        problems["seconds"] = f"must be more than 0 and at most {MAX_DROP_SECONDS:g}, got {seconds:g}"
    if mode not in DROP_MODES:
        problems["mode"] = f"must be one of {', '.join(DROP_MODES)}, got {mode!r}"
    return problems


def request_drop(exchange: str, seconds: float, mode: str = "close", *, wait: float | None = None) -> tuple[str, ...]:
    """Ask the stream of ``exchange`` to take its socket down for ``seconds`` (``mode`` close or stall) and wait up
    to ``wait`` seconds (default ``FEED_CONTROL_ACK_SECONDS``) for its acknowledgement. Returns the streams that
    acknowledged (``"host pid N"``, at least one). Raises ValueError naming the bad argument, ControlUnavailable
    when Redis cannot be reached, NotAcknowledged when no stream answered."""
    if problems := drop_problems(exchange, seconds, mode):
        raise ValueError("; ".join(f"{k}: {v}" for k, v in problems.items()))
    wait = settings.FEED_CONTROL_ACK_SECONDS if wait is None else wait
    try:
        streams = async_to_sync(_drop_and_wait)(exchange, seconds, mode, wait)
    except (OSError, RedisError) as exc:
        raise ControlUnavailable(f"the channel layer (Redis) cannot be reached: {exc}") from None
    if not streams:
        raise NotAcknowledged(
            f"no stream of {exchange} acknowledged the drop within {wait:g} s: is manage.py stream running?"
        )
    return streams


async def _drop_and_wait(exchange: str, seconds: float, mode: str, wait: float) -> tuple[str, ...]:
    """Send the drop with a reply channel of our own; collect the acks until ``wait`` is over, or until a short
    while after the first one."""
    layer = get_channel_layer()
    reply = await layer.new_channel()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    command = {"type": DROP, "seconds": seconds, "mode": mode, "reply_to": reply}
    try:
        async with asyncio.timeout(wait):  # a hung Redis accepts the connection and never answers
            await past_stale_connections(lambda: layer.group_send(control_group(exchange), command))
    except TimeoutError:
        raise ControlUnavailable(f"the channel layer (Redis) did not answer within {wait:g} s") from None
    streams: list[str] = []
    while (left := deadline - loop.time()) > 0:
        try:
            async with asyncio.timeout(left):
                message = await past_stale_connections(lambda: layer.receive(reply))
        except TimeoutError:
            break
        if message.get("type") == DROP_ACK and message.get("exchange") == exchange:
            streams.append(str(message.get("stream", "a stream")))
            deadline = min(deadline, loop.time() + MORE_ACKS_SECONDS)
    return tuple(streams)


async def past_stale_connections(call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, again after a connection error, a few times. A Redis that restarted leaves the process's pooled
    connections dead, and redis-py finds out on the first command each one carries (``Connection closed by
    server``), then reconnects it; without this the first drop after a Redis restart would answer 503 while Redis
    is up, or its acknowledgement would be lost. A Redis that is down fails every attempt at once (connection
    refused)."""
    for _ in range(STALE_CONNECTION_RETRIES):
        try:
            return await call()
        except RedisConnectionError:
            pass
    return await call()
