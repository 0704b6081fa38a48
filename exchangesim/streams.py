"""What every venue's stream server shares: the socket and its send queue, the connection lifecycle (and the
count of connections opened, ``opened``: ``connections_opened`` in each venue's ``/_sim/status``), the writer
task, the fan-out's cut-off of slow clients, and the socket faults (refuse, stall, corrupt, drop).

A stall is what a dead TCP connection looks like from the client: the socket stays open and answers nothing,
neither data, heartbeats nor replies (they are dropped by the writer) nor pongs to the client's pings (the
readers answer pings themselves, so they can stay silent).

A venue's server subclasses ``StreamServer`` and keeps its protocol: its routes, the refusal and upgrade in
``handle``, the answers of ``control``, and the frames of ``on_tick``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from aiohttp import WSMsgType, web

from .engine.market import Emission, now_ms
from .engine.offload import Stopped
from .engine.tape import Tape
from .sockets import reset_connection, text_frames

if TYPE_CHECKING:
    from .venues import VenueBase

MAX_QUEUED_FRAMES = 200_000  # a client this far behind (~40 MB) is cut off, as Binance does with slow readers


@dataclass(eq=False)
class Socket:
    """One stream connection: its socket, the request that opened it, and the batches its writer has to send."""

    ws: web.WebSocketResponse
    request: web.Request
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue, kw_only=True)
    queued_frames: int = field(default=0, kw_only=True)

    def send(self, batch: list[Any]) -> None:
        if batch:
            self.queue.put_nowait(batch)
            self.queued_frames += len(batch)


@dataclass(frozen=True, slots=True)
class CloseAfter:
    """Queued in place of a batch: the writer closes the socket so, once what was queued before has gone out."""

    code: int
    message: bytes


S = TypeVar("S", bound=Socket)


class StreamServer(Generic[S]):
    """Connections (``conns``) of one venue and what every venue does the same way with them."""

    client_noun: ClassVar[str] = "a client"  # in the log line of a slow client cut off
    quiet_drop: ClassVar[bool] = False  # a drop ignores a socket whose close fails
    CLOSE_WAIT: ClassVar[float] = 2.0  # seconds a stopping simulator waits for its clients' close answers
    CHUNK_FRAMES: ClassVar[int] = 256  # messages written at once; the loop is given back between two chunks
    WRITE_BUFFER_HIGH: ClassVar[int] = 1 << 20  # unsent bytes above which a writer waits for its client
    DRAIN_POLL_S: ClassVar[float] = 0.005

    def __init__(self, venue: VenueBase) -> None:
        self.venue = venue
        self.market = venue.market
        self.conns: set[S] = set()
        self.opened = 0  # stream connections accepted since the simulator started (refused ones are not)
        self._warming: set[int] = set()  # tapes whose cold minutes a history worker is aggregating
        self.market.listeners.append(self.on_tick)

    def on_tick(self, t_ms: int, emissions: list[Emission]) -> None:
        raise NotImplementedError

    def control(self, conn: S, text: str) -> Any:
        raise NotImplementedError

    # -- connection lifecycle -------------------------------------------------------------------
    def refusing(self) -> bool:
        """Whether a drop still refuses new sockets (each refusal counted as ``ws_rejected``)."""
        faults = self.venue.faults
        if faults.reject_until_ms.get(self.venue.name, 0) > now_ms():
            faults.count("ws_rejected")
            return True
        return False

    def on_open(self, conn: S) -> None:
        """Called once ``conn`` is accepted, before its writer starts (what to queue first)."""

    async def serve(self, conn: S, *beside: Coroutine[Any, Any, None]) -> web.WebSocketResponse:
        """Count ``conn`` among ``conns`` (and in ``opened``) and read it until it ends, its writer and the tasks
        ``beside`` running meanwhile; then forget it, stop those tasks and close it."""
        self.opened += 1
        self.on_open(conn)
        self.conns.add(conn)
        tasks = [asyncio.create_task(self._writer(conn)), *(asyncio.create_task(c) for c in beside)]
        try:
            await self._reader(conn)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.conns.discard(conn)
            conn.queue.put_nowait(None)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not conn.ws.closed:
                await conn.ws.close()
        return conn.ws

    async def _reader(self, conn: S) -> None:
        """Each text message is answered (in order with the data, through the writer) by ``control``; a ping is
        answered with its pong unless the venue is stalled (the socket is made with ``autoping=False``)."""
        async for msg in conn.ws:
            if msg.type == WSMsgType.TEXT:
                conn.send(self.control(conn, msg.data))
            elif msg.type == WSMsgType.PING:
                if not self.stalled():
                    await conn.ws.pong(msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return

    def stalled(self) -> bool:
        return self.venue.faults.stall_until_ms.get(self.venue.name, 0) > now_ms()

    def render(self, conn: S, batch: list[Any]) -> list[str]:
        """The frames of a queued batch as they go out (the batch itself unless the venue queues otherwise)."""
        return batch

    async def _writer(self, conn: S) -> None:
        """Send what is queued, in order; during a stall batches are dropped, and corruptions are applied.

        A batch goes out in chunks of ``CHUNK_FRAMES`` messages, each written at once (``_write``), and the loop is
        given back between two chunks: a tick's fan-out over a universe is thousands of messages, and sent one
        ``send_str`` (one system call) each they held every other request (``/_sim/status`` too) for tens of ms."""
        while True:
            batch = await conn.queue.get()
            if batch is None or conn.ws.closed:
                return
            if isinstance(batch, CloseAfter):
                await conn.ws.close(code=batch.code, message=batch.message)
                return
            conn.queued_frames -= len(batch)
            if self.stalled():
                continue
            for i in range(0, len(batch), self.CHUNK_FRAMES):
                if i:
                    await asyncio.sleep(0)
                chunk = batch[i : i + self.CHUNK_FRAMES]
                if not await self._write(
                    conn, self.venue.faults.corrupt_frames(self.venue.name, self.render(conn, chunk))
                ):
                    return

    async def _write(self, conn: S, frames: list[str]) -> bool:
        """Write ``frames`` as WebSocket messages in one go, then wait while more than ``WRITE_BUFFER_HIGH`` bytes
        are still unsent (a slow reader: its batches wait in the queue meanwhile, where the fan-out counts them).
        False once the socket is closing (nothing is written after a close frame)."""
        transport = conn.request.transport
        if conn.ws.closed or transport is None or transport.is_closing():
            return False
        if frames:
            transport.write(text_frames(frames))
        while transport.get_write_buffer_size() > self.WRITE_BUFFER_HIGH:
            await asyncio.sleep(self.DRAIN_POLL_S)
            if conn.ws.closed or transport.is_closing():
                return False
        return True

    # -- fan-out --------------------------------------------------------------------------------
    def deliver(self, conn: S, batch: list[Any]) -> None:
        """Queue a non-empty ``batch`` for ``conn``, or cut off a client more than MAX_QUEUED_FRAMES behind."""
        if conn.queued_frames > MAX_QUEUED_FRAMES:
            logging.getLogger(type(self).__module__).warning(
                "dropping %s that fell %s frames behind", self.client_noun, MAX_QUEUED_FRAMES
            )
            self.conns.discard(conn)
            asyncio.get_running_loop().create_task(conn.ws.close(code=1008, message=b"Too slow"))
            return
        conn.send(batch)

    # -- faults ---------------------------------------------------------------------------------
    async def drop(self, mode: str) -> int:
        """Close every socket (``close``) or reset its TCP connection (``reset``)."""
        conns = list(self.conns)
        for conn in conns:
            if mode == "reset":
                reset_connection(conn.request)
            else:
                with contextlib.suppress(Exception) if self.quiet_drop else contextlib.nullcontext():
                    await conn.ws.close(code=1001, message=b"Server closing the connection")
        return len(conns)

    async def close(self) -> None:
        """Close every socket at once: the simulator is stopping. A client that has not answered the close
        within ``CLOSE_WAIT`` seconds (busy, or far behind) has its connection aborted, so a stop under load
        takes seconds, not ten seconds a socket."""
        conns = list(self.conns)
        if not conns:
            return
        closing = {asyncio.ensure_future(c.ws.close(code=1001, message=b"Simulator stopping")): c for c in conns}
        _, late = await asyncio.wait(closing, timeout=self.CLOSE_WAIT)
        for task in late:
            task.cancel()
            reset_connection(closing[task].request)

    # -- history the pushes need ------------------------------------------------------------------
    def minutes_ready(self, tape: Tape, start_ms: int, end_ms: int) -> bool:
        """Whether the past minutes of ``[start_ms, end_ms)`` are aggregated already, so a push can be built
        from them on the loop. If not, their aggregation starts on a history worker (one batch per tape at a
        time) and the caller skips this push: a day of cold minutes at a high rate takes minutes to build.
        Outside a running loop (a market ticked by hand) the caller builds them itself."""
        cold = tape.cold_minutes(start_ms, end_ms)
        if not cold:
            return True
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return True
        if id(tape) not in self._warming:
            self._warming.add(id(tape))
            task = asyncio.ensure_future(
                self.market.offload.run(tape.warm_minutes, iter(cold), 1 << 62, kind="candles")
            )
            task.add_done_callback(lambda t: self._warmed(id(tape), t))
        return False

    def _warmed(self, key: int, task: asyncio.Future[Any]) -> None:
        self._warming.discard(key)
        if not task.cancelled() and task.exception() is not None and not isinstance(task.exception(), Stopped):
            logging.getLogger(__name__).error("aggregating minutes for a stream failed", exc_info=task.exception())


def subscriptions(conns: set[Any]) -> dict[str, list[str]]:
    """Channel -> every subscription of the sockets ``conns`` (``subs``: channel -> items), as sorted strings."""
    subs: dict[str, set[str]] = {}
    for conn in conns:
        for channel, items in conn.subs.items():
            subs.setdefault(channel, set()).update(str(s) for s in items)
    return {c: sorted(ss) for c, ss in sorted(subs.items())}
