"""Socket faults every venue's streams share, and whether a request's client is still there."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

from aiohttp import web


def client_gone(request: web.Request) -> Callable[[], bool]:
    """A check of whether the client of ``request`` has closed its connection (history work for it is given up)."""
    return lambda: request.transport is None or request.transport.is_closing()


def reset_connection(request: web.Request) -> None:
    """Abort the TCP connection under a request with an RST (SO_LINGER 0), not a clean close."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport else None
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if transport is not None:
        transport.abort()
