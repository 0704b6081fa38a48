"""The stream's listeners: each event runs on the thread its listener asked for, in order; a listener that fails
is logged and counted and stops neither the stream nor the other listeners; what a listener announces goes out
through the stream's publisher, from any thread, even as it stops. No database, no socket."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY

from markets.exchanges.base import TradeTick
from markets.live import Publisher
from markets.stream import ListenerContext, ListenerThread, StreamListener
from markets.stream.listeners import Listeners

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


class Recorder(StreamListener):
    """Notes each event with the name of the thread it ran on."""

    def __init__(self, name: str, thread: ListenerThread, *, fail_on: str = "") -> None:
        self.name, self.thread, self.fail_on = name, thread, fail_on
        self.seen: list[tuple[str, str]] = []
        self.context: ListenerContext | None = None

    def _note(self, event: str) -> None:
        self.seen.append((event, threading.current_thread().name))
        if event == self.fail_on:
            raise RuntimeError(f"{self.name} fails on {event} (injected)")

    def attach(self, context: ListenerContext) -> None:
        self.context = context

    def start(self, now: datetime) -> None:
        self._note("start")

    def ticks_stored(self, batch: Sequence[TradeTick], now: datetime) -> None:
        self._note("ticks_stored")

    def feed_changed(self, state: str, reason: str, now: datetime) -> None:
        self._note(f"feed_changed {state}")

    def stop(self) -> None:
        self._note("stop")
        assert self.context is not None
        self.context.announce("group", {"type": "last.words", "data": {"from": self.name}})


class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def event(self, group: str, event: dict[str, Any]) -> None:
        self.sent.append((group, event))


def failures(listener: str, event: str) -> float:
    value = REGISTRY.get_sample_value(
        "tradingsite_stream_listener_failures_total", {"exchange": "sim", "listener": listener, "event": event}
    )
    return value or 0.0


def test_each_listener_runs_on_its_thread_in_order_and_a_failure_stops_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Events go to every listener in the order they were attached: a ``DATABASE`` one on the database thread
    (where the stream calls the event), an ``OWN`` one queued on its thread ``stream-<name>``; starts run on the
    REST thread and the own thread; one listener raising on an event is logged and counted, and the others, and
    its own later events, go on; each stop runs after the jobs queued before it, and what it announces goes out."""
    db = ThreadPoolExecutor(1, thread_name_prefix="stream-db")
    rest = ThreadPoolExecutor(1, thread_name_prefix="stream-rest")
    signals = Recorder("signals", ListenerThread.DATABASE, fail_on="ticks_stored")
    trade = Recorder("trade", ListenerThread.OWN)
    publisher = FakePublisher()
    before = failures("signals", "ticks_stored")

    async def main() -> None:
        listeners = Listeners("sim", ("BTCUSDT",), [signals, trade], db)
        listeners.bind(asyncio.get_running_loop(), cast(Publisher, publisher))
        await listeners.start(rest, lambda: NOW)
        for _ in range(2):
            await asyncio.get_running_loop().run_in_executor(db, listeners.ticks_stored, [], NOW)
        await asyncio.get_running_loop().run_in_executor(db, listeners.feed_changed, "down", "stopped", NOW)
        await listeners.stop()

    asyncio.run(main())
    db.shutdown()
    rest.shutdown()
    assert [event for event, _ in signals.seen] == [
        "start",
        "ticks_stored",
        "ticks_stored",
        "feed_changed down",
        "stop",
    ]
    assert [event for event, _ in trade.seen] == ["start", "ticks_stored", "ticks_stored", "feed_changed down", "stop"]
    assert signals.seen[0][1].startswith("stream-rest")
    assert {thread for _, thread in signals.seen[1:]} == {signals.seen[1][1]}
    assert signals.seen[1][1].startswith("stream-db")
    assert {thread.split("_")[0] for _, thread in trade.seen} == {"stream-trade"}
    assert failures("signals", "ticks_stored") - before == 2
    assert caplog.text.count("sim: the signals listener failed on ticks_stored") == 2
    assert publisher.sent == [
        ("group", {"type": "last.words", "data": {"from": "signals"}}),
        ("group", {"type": "last.words", "data": {"from": "trade"}}),
    ]


def test_submit_queues_work_on_the_listeners_thread() -> None:
    """``context.submit`` runs a job on the listener's own thread, after what is queued there, and gives back its
    result; a job that raises is logged and gives None."""
    db = ThreadPoolExecutor(1)
    trade = Recorder("trade", ListenerThread.OWN)
    listeners = Listeners("sim", ("BTCUSDT",), [trade], db)
    assert trade.context is not None
    done = trade.context.submit(lambda: threading.current_thread().name)
    assert done.result(5).startswith("stream-trade")

    def boom() -> None:
        raise ValueError("injected")

    assert trade.context.submit(boom).result(5) is None

    async def main() -> None:
        await listeners.stop()

    asyncio.run(main())
    db.shutdown()
    assert trade.context.submit(lambda: 1).result(5) is None  # stopped: dropped, not raised


def test_an_announcement_before_the_stream_runs_goes_nowhere() -> None:
    """Before ``run()`` binds the loop and the channel layer, an announcement is dropped, not raised."""
    db = ThreadPoolExecutor(1)
    listener = Recorder("signals", ListenerThread.DATABASE)
    Listeners("sim", ("BTCUSDT",), [listener], db)
    assert listener.context is not None
    listener.context.announce("group", {"type": "x", "data": {}})
    db.shutdown()


class SlowFirstLayer:
    """A channel layer whose sends take less time the later they start: sent side by side, they would swap."""

    def __init__(self) -> None:
        self.delivered: list[object] = []
        self._delay = 0.05

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        delay, self._delay = self._delay, max(0.0, self._delay - 0.01)
        await asyncio.sleep(delay)
        self.delivered.append(message["data"].get("n", message["type"]))


def test_announcements_go_out_in_the_order_they_were_made() -> None:
    """Each announcement waits for the one before it, so a later update never overtakes an earlier one (a
    position's unrealised PnL arriving after its close would show it open again)."""
    db = ThreadPoolExecutor(1)
    listener = Recorder("orders", ListenerThread.OWN)
    listeners = Listeners("sim", ("BTCUSDT",), [listener], db)
    layer = SlowFirstLayer()

    async def main() -> None:
        listeners.bind(asyncio.get_running_loop(), Publisher(layer, "sim"))
        assert listener.context is not None
        announce = listener.context.announce
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: [announce("orders", {"type": "orders.update", "data": {"n": n}}) for n in range(6)]
        )
        await listeners.stop()

    asyncio.run(main())
    db.shutdown()
    assert layer.delivered == [0, 1, 2, 3, 4, 5, "last.words"]
