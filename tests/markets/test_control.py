"""Feed commands over the real Redis channel layer, both ends in this process: ``markets.control.request_drop``
(what the web and ``manage.py feed drop`` send) and the stream's listener ``markets.stream.control``.

A drop is acknowledged by every stream that takes it, and not acknowledged when no stream listens; the listener
keeps its membership of the control group through a Redis restart, a channel-layer error (with a fresh channel, the
old one taken out of the group) and channels-redis's group expiry."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.management import call_command
from django.core.management.base import CommandError
from redis.exceptions import ConnectionError as RedisConnectionError

from markets.control import ControlUnavailable, NotAcknowledged, control_group, request_drop
from markets.stream.control import LEAVE_SECONDS, receive_commands, where
from tradingsite.devstack import Service, free_port, start_redis

STREAM = f"{socket.gethostname()} pid {os.getpid()}"  # how a stream in this process names itself
Drops = list[tuple[float, str]]
LISTENER_ENDS_SECONDS = 3 * LEAVE_SECONDS + 2  # leaving the group, and a receive that outlives its cancellation


async def until(check: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Wait on the loop until ``check()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, f"timed out after {seconds} s waiting for {what}"
        await asyncio.sleep(0.05)


class Layer:
    """The project's channel layer pointed at one Redis under a prefix of its own, and that Redis's group view."""

    def __init__(self, settings: Any, uri: str, **config: Any) -> None:
        self.uri = uri
        self.prefix = f"test-control-{uuid.uuid4().hex[:8]}"
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [{"address": uri, "socket_timeout": 30}], "prefix": self.prefix, **config},
            }
        }
        self.layer = get_channel_layer()

    def members(self, exchange: str = "binance") -> set[str]:
        """The channels in ``exchange``'s control group, as Redis holds it now (none when Redis is away)."""
        client = redis.Redis.from_url(self.uri, socket_connect_timeout=0.5)
        try:
            return {m.decode() for m in client.zrange(f"{self.prefix}:group:{control_group(exchange)}", 0, -1)}
        except redis.RedisError:
            return set()
        finally:
            client.close()

    def forget_group(self, exchange: str = "binance") -> None:
        """Delete the group key, as a Redis that restarted (or expired it) would have."""
        client = redis.Redis.from_url(self.uri)
        try:
            client.delete(f"{self.prefix}:group:{control_group(exchange)}")
        finally:
            client.close()


@pytest.fixture
def layer(settings: Any, dev_stack: dict[str, Service]) -> Layer:
    """The session's Redis, under a prefix of this test's own."""
    settings.FEED_CONTROL_ACK_SECONDS = 1.0
    return Layer(settings, dev_stack["redis"].uri)


@contextlib.asynccontextmanager
async def stream(layer: Layer, channel_layer: Any = None, **kwargs: Any) -> AsyncIterator[Drops]:
    """A stream's control listener for binance on this loop, joined; yields the drops it was told. It is cancelled
    (and leaves the group) at the end."""
    drops: Drops = []
    before = len(layer.members())
    task = asyncio.create_task(
        receive_commands("binance", lambda s, m: drops.append((s, m)), layer=channel_layer, **kwargs)
    )
    try:
        await until(lambda: len(layer.members()) > before or task.done(), "the listener to join its group")
        yield drops
    finally:
        task.cancel()
        # bounded, and a cancellation of the test itself is not swallowed here (it once turned a hang into a
        # confusing failure at teardown)
        done, _ = await asyncio.wait({task}, timeout=LISTENER_ENDS_SECONDS)
        assert done, f"the listener did not end within {LISTENER_ENDS_SECONDS} s of its cancellation: " + "; ".join(
            f"{t.get_name()} at {where(t)}" for t in asyncio.all_tasks() if t is not asyncio.current_task()
        )


async def drop(seconds: float = 5, mode: str = "close", *, wait: float | None = None) -> tuple[str, ...]:
    """``request_drop`` as the web calls it: synchronously, on a thread of this loop."""
    return await sync_to_async(request_drop)("binance", seconds, mode, wait=wait)


async def test_a_drop_is_acknowledged_by_the_stream_that_takes_it(layer: Layer) -> None:
    async with stream(layer) as drops:
        assert await drop(3, "stall") == (STREAM,)
        assert drops == [(3.0, "stall")]


async def test_every_stream_of_the_exchange_acknowledges(layer: Layer) -> None:
    """Two stream workers share an exchange: both take the drop, and the sender counts both."""
    async with stream(layer) as first, stream(layer) as second:
        assert await drop(2) == (STREAM, STREAM)
        assert first == second == [(2.0, "close")]


async def test_a_drop_no_stream_takes_is_not_acknowledged(layer: Layer) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(NotAcknowledged) as exc:
        await drop(wait=0.5)
    assert str(exc.value) == "no stream of binance acknowledged the drop within 0.5 s: is manage.py stream running?"
    assert 0.5 <= loop.time() - started < 3, "the wait is bounded"


async def test_without_redis_the_drop_is_unavailable(settings: Any) -> None:
    Layer(settings, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    with pytest.raises(ControlUnavailable, match=r"^the channel layer \(Redis\) cannot be reached: "):
        await drop(wait=0.5)


async def test_a_hung_redis_is_unavailable_within_the_wait(settings: Any, tmp_path: Path) -> None:
    """Redis stopped (SIGSTOP) takes the connection and never answers: the request ends within its wait."""
    server = start_redis(tmp_path / "redis")
    try:
        Layer(settings, server.uri)
        server.process.send_signal(signal.SIGSTOP)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ControlUnavailable, match=r"^the channel layer \(Redis\) did not answer within 0.5 s$"):
            await drop(wait=0.5)
        assert loop.time() - started < 2
    finally:
        server.process.send_signal(signal.SIGCONT)
        server.stop()


async def test_the_feed_drop_command_says_who_acknowledged_or_that_none_did(layer: Layer) -> None:
    out = io.StringIO()
    async with stream(layer) as drops:
        await sync_to_async(call_command)("feed", "drop", "--seconds", "3", stdout=out)
    assert out.getvalue().startswith(f"acknowledged by the binance stream ({STREAM}): it will drop its socket for 3 s")
    assert drops == [(3.0, "close")]
    with pytest.raises(CommandError) as exc:
        await sync_to_async(call_command)("feed", "drop", "--seconds", "3", "--wait", "0.3")
    assert str(exc.value) == "no stream of binance acknowledged the drop within 0.3 s: is manage.py stream running?"


async def test_a_bad_command_is_ignored_and_the_listener_goes_on(
    layer: Layer, caplog: pytest.LogCaptureFixture
) -> None:
    """A malformed command is logged, not obeyed, not acknowledged; a drop from a sender that does not wait for an
    answer (no ``reply_to``) is obeyed."""
    # the warnings are heard by a handler on the logger itself: what earlier tests did to the root logger's handlers,
    # to levels or to propagation (an in-process Celery worker takes the root logger over) cannot hide them
    records: list[logging.LogRecord] = []
    heard = logging.Handler(logging.WARNING)
    heard.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("markets.stream.control")
    before = (logger.level, logger.disabled)
    logger.setLevel(logging.WARNING)
    logger.disabled = False
    logger.addHandler(heard)
    try:
        async with stream(layer) as drops:
            group = control_group("binance")
            await layer.layer.group_send(group, {"type": "feed.drop", "seconds": -1, "reply_to": "nowhere"})
            await layer.layer.group_send(group, {"type": "feed.explode"})
            await layer.layer.group_send(group, {"type": "feed.drop", "seconds": 4, "mode": "stall"})
            assert await drop(1) == (STREAM,)
            assert drops == [(4.0, "stall"), (1.0, "close")]
    finally:
        logger.removeHandler(heard)
        logger.setLevel(before[0])
        logger.disabled = before[1]
    assert sum("bad feed command ignored" in r.getMessage() for r in records) == 2


class FailsOnce:
    """The channel layer whose first receive fails as a Redis connection reset does; the channels it was asked to
    receive on are noted."""

    def __init__(self, layer: Any) -> None:
        self._layer = layer
        self.channels: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._layer, name)

    async def receive(self, channel: str) -> dict[str, Any]:
        self.channels.append(channel)
        if len(self.channels) == 1:
            raise RedisConnectionError("Connection reset by peer")
        return await self._layer.receive(channel)


class OutlivesItsCancellation:
    """The channel layer whose receive, once cancelled, goes on waiting (as a receive inside channels-redis once
    seemed to in a long test run): the first cancellation is swallowed."""

    def __init__(self, layer: Any) -> None:
        self._layer = layer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._layer, name)

    async def receive(self, channel: str) -> dict[str, Any]:
        try:
            return await self._layer.receive(channel)  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # cancelled again when the loop closes
            raise


async def test_a_receive_that_outlives_its_cancellation_does_not_hold_up_the_stop(
    layer: Layer, caplog: pytest.LogCaptureFixture
) -> None:
    """The listener ends within about a second all the same (``stream`` fails otherwise), says where the receive
    was, and leaves its group."""
    caplog.set_level(logging.WARNING, "markets.stream.control")
    loop = asyncio.get_running_loop()
    async with stream(layer, OutlivesItsCancellation(layer.layer)) as drops:
        assert await drop(2) == (STREAM,)
        stopping = loop.time()
    took = loop.time() - stopping
    assert drops == [(2.0, "close")]
    assert took < 2 * LEAVE_SECONDS + 1
    assert f"the control listener's ControlListener._listen did not end within {LEAVE_SECONDS:g} s" in caplog.text
    assert "it was at markets.stream.control:" in caplog.text
    assert "> tests.markets.test_control:" in caplog.text  # the await chain, down to the receive that held on
    assert layer.members() == set(), "a stopped stream leaves its group"


async def test_after_a_channel_layer_error_the_stream_rejoins_with_a_fresh_channel(
    layer: Layer, caplog: pytest.LogCaptureFixture
) -> None:
    """The failed channel is taken out of the group (no command goes to a channel nobody reads); the fresh one is
    in it, and a drop is acknowledged."""
    flaky = FailsOnce(layer.layer)
    caplog.set_level(logging.INFO, "markets.stream.control")
    async with stream(layer, flaky) as drops:
        await until(lambda: len(flaky.channels) >= 2, "the listener to receive again")
        first, fresh = flaky.channels[0], flaky.channels[-1]
        assert first != fresh
        await until(lambda: layer.members() == {fresh}, "the failed channel to leave the group")
        assert await drop(2) == (STREAM,)
        assert drops == [(2.0, "close")]
    assert "lost its control channel (ConnectionError: Connection reset by peer)" in caplog.text
    assert "control group feed.binance rejoined after" in caplog.text
    assert layer.members() == set(), "a stopped stream leaves its group"


async def test_a_membership_redis_forgot_is_renewed_on_the_timer(layer: Layer) -> None:
    async with stream(layer, rejoin_seconds=0.2) as drops:
        layer.forget_group()
        assert layer.members() == set()
        await until(lambda: len(layer.members()) == 1, "the listener to renew its membership", 5)
        assert await drop(2) == (STREAM,)
        assert drops == [(2.0, "close")]


async def test_the_membership_outlives_the_group_expiry(settings: Any, dev_stack: dict[str, Service]) -> None:
    """With channels-redis's ``group_expiry`` at 1 s (a day by default), a group send forgets members added more
    than 1 s before; the listener renews at half that, so three expiries later it still takes a drop."""
    settings.FEED_CONTROL_ACK_SECONDS = 1.0
    layer = Layer(settings, dev_stack["redis"].uri, group_expiry=1)
    async with stream(layer) as drops:  # the default timer (60 s) is cut to half the expiry
        await asyncio.sleep(3)  # time passing is the point: three group expiries
        assert await drop(2) == (STREAM,)
        assert drops == [(2.0, "close")]


async def test_the_stream_rejoins_after_redis_restarts(
    settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis killed (SIGKILL) and started again on its port, empty: the listener notices on its pending receive,
    retries with back-off while Redis is away, rejoins once it answers, and the next drop is acknowledged."""
    settings.FEED_CONTROL_ACK_SECONDS = 1.0
    caplog.set_level(logging.INFO, "markets.stream.control")
    server = start_redis(tmp_path / "redis")
    port = int(server.uri.rsplit(":", 1)[1].split("/")[0])
    try:
        layer = Layer(settings, server.uri)
        async with stream(layer) as drops:
            assert await drop(2) == (STREAM,)
            server.process.kill()
            server.process.wait(10)
            await until(lambda: "lost its control channel" in caplog.text, "the listener to notice")
            with pytest.raises(ControlUnavailable):
                await drop(2)
            server = start_redis(tmp_path / "redis", port=port)
            await until(lambda: len(layer.members()) == 1, "the listener to rejoin", 15)
            assert await drop(3) == (STREAM,)
            assert drops == [(2.0, "close"), (3.0, "close")]
        assert "control group feed.binance rejoined after" in caplog.text
    finally:
        server.stop()
