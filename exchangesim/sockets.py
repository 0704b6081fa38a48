"""Socket faults every venue's streams share."""

from __future__ import annotations

import socket
import struct

from aiohttp import web


def reset_connection(request: web.Request) -> None:
    """Abort the TCP connection under a request with an RST (SO_LINGER 0), not a clean close."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport else None
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if transport is not None:
        transport.abort()
