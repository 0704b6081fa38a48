"""The sockets of one exchange's stream: its symbols spread over as many sockets as the venue's rules ask.

A socket carries at most the venue's ``streams_per_socket`` symbols (``SocketLimits``, or ``StreamConfig.
streams_per_socket`` to override it); added symbols go onto the sockets with room first, in order, and onto new
sockets only when none has room (``place``). Each socket is a ``Connection`` of its own: its own watchdog (a quiet
socket that is heard is kept), its own reconnects, its own state; a socket that drops leaves the others streaming, and
the hole it leaves is found by id on its symbols alone. Every connect of every socket waits for the venue's connection
pacer, every message on a socket for that socket's pacer (``pacing``). A socket whose symbols were all removed closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from ..exchanges.base import StreamAdapter
from ..exchanges.registry import venue
from ..models import Feed
from .config import StreamConfig
from .connection import Connection
from .outage import supervised
from .pacing import Pacer, connection_pacer

log = logging.getLogger(__name__)
OnFrame = Callable[[str | bytes], str | None]


def place(
    symbols: Sequence[str], loads: Sequence[int], per_socket: int
) -> tuple[dict[int, list[str]], list[list[str]]]:
    """Where new ``symbols`` go: onto the sockets with room, in order (``loads``: how many symbols each carries),
    then onto new sockets of at most ``per_socket`` each. Returns (socket index → its new symbols, the new sockets'
    symbols). Pure."""
    if per_socket < 1:
        raise ValueError(f"a socket must carry at least one symbol, got {per_socket}")
    onto: dict[int, list[str]] = {}
    left = list(symbols)
    for i, load in enumerate(loads):
        room = per_socket - load
        if room > 0 and left:
            onto[i], left = left[:room], left[room:]
    return onto, [left[i : i + per_socket] for i in range(0, len(left), per_socket)]


class SocketPool:
    """The sockets of ``config.exchange`` through ``feed`` (a template: each socket gets its share with
    ``feed.for_symbols``). ``on_frame`` takes every frame of every socket (and returns a reply to send back, if any);
    ``on_state(state, reason)`` hears the stream's state: connected when every socket is, else the first one down."""

    def __init__(
        self,
        config: StreamConfig,
        feed: StreamAdapter,
        on_frame: OnFrame,
        on_state: Callable[[str, str], Awaitable[None]],
        stopping: asyncio.Event,
        *,
        connections: Pacer | None = None,
    ) -> None:
        limits = venue(config.exchange).sockets
        self.config = config
        self.feed = feed
        self.per_socket = config.streams_per_socket or limits.streams_per_socket
        self.sockets: list[Connection] = []
        self._where: dict[str, Connection] = {}
        self._states: dict[Connection, tuple[str, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_frame = on_frame
        self._on_state = on_state
        self._stopping = stopping
        self._connections = connections or connection_pacer(config.exchange, limits)
        self._running = False
        self._numbered = 0
        self._retired_reconnects = 0

    @property
    def reconnects(self) -> int:
        """How many times a socket went down since the stream started (all its sockets)."""
        return self._retired_reconnects + sum(c.reconnects for c in self.sockets)

    @property
    def symbols(self) -> list[str]:
        """Every symbol the sockets carry."""
        return list(self._where)

    def socket_of(self, symbol: str) -> Connection | None:
        return self._where.get(symbol)

    def state_of(self, symbol: str) -> str:
        """The state of the socket that carries ``symbol`` (reconnecting until it first connects; down for a symbol
        no socket carries)."""
        conn = self._where.get(symbol)
        return self._states.get(conn, (Feed.State.RECONNECTING, ""))[0] if conn is not None else Feed.State.DOWN

    def add(self, symbols: Sequence[str]) -> None:
        """Carry ``symbols`` too: on the open sockets with room (subscribed there, paced), then on new sockets."""
        new = [s for s in dict.fromkeys(symbols) if s not in self._where]
        onto, fresh = place(new, [len(c.symbols) for c in self.sockets], self.per_socket)
        for i, share in onto.items():
            conn = self.sockets[i]
            conn.add(share)
            self._where.update(dict.fromkeys(share, conn))
        for share in fresh:
            conn = self._new_socket(share)
            self.sockets.append(conn)
            self._where.update(dict.fromkeys(share, conn))
            if self._running:
                self._start(conn)
        if fresh:
            log.info(
                "%s: %d symbols on %d sockets (at most %d a socket)",
                self.config.exchange,
                len(self._where),
                len(self.sockets),
                self.per_socket,
            )

    def _new_socket(self, symbols: list[str]) -> Connection:
        self._numbered += 1
        conn: Connection

        async def on_state(state: str, reason: str) -> None:
            await self._state(conn, state, reason)

        conn = Connection(
            self.config,
            self.feed,
            self._on_frame,
            on_state,
            self._stopping,
            symbols=tuple(symbols),
            connections=self._connections,
            name=f"{self.config.exchange} socket {self._numbered}",
        )
        return conn

    def remove(self, symbols: Sequence[str]) -> None:
        """Carry ``symbols`` no more: unsubscribed on their sockets (paced); a socket left with none closes."""
        by_socket: dict[Connection, list[str]] = {}
        for s in symbols:
            conn = self._where.pop(s, None)
            if conn is not None:
                by_socket.setdefault(conn, []).append(s)
        for conn, gone in by_socket.items():
            conn.remove(gone)
            if not conn.symbols:
                self._retire(conn)

    def drop(self, seconds: float, mode: str = "close") -> None:
        """Take every socket down for ``seconds`` (see ``Connection.drop``)."""
        for conn in self.sockets:
            conn.drop(seconds, mode)

    def close(self) -> None:
        """Close every open socket now (the stream is stopping)."""
        for conn in self.sockets:
            conn.close()

    async def run(self) -> None:
        """Run every socket (and those added later) until ``stopping``; then wait for them to end."""
        self._running = True
        for conn in self.sockets:
            self._start(conn)
        await self._stopping.wait()
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def _start(self, conn: Connection) -> None:
        task = asyncio.create_task(supervised(conn.name, "socket", conn.run, self._stopping))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _retire(self, conn: Connection) -> None:
        if conn in self.sockets:
            self.sockets.remove(conn)
            self._retired_reconnects += conn.reconnects
            self._states.pop(conn, None)
            log.info("%s: closed (no symbol left); %d sockets open", conn.name, len(self.sockets))

    async def _state(self, conn: Connection, state: str, reason: str) -> None:
        if conn not in self.sockets:
            return
        self._states[conn] = (state, reason)
        down = [(c, self._states.get(c, (Feed.State.RECONNECTING, "connecting"))) for c in self.sockets]
        down = [(c, st) for c, st in down if st[0] != Feed.State.CONNECTED]
        if not down:
            await self._on_state(Feed.State.CONNECTED, "")
        else:
            c, (worst, why) = down[0]
            await self._on_state(worst, f"{c.name}: {why}" if len(self.sockets) > 1 else why)
