"""Socket faults every venue's streams share, whether a request's client is still there, and the WebSocket framing
of a run of text messages written at once."""

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


def text_frames(texts: list[str]) -> bytes:
    """``texts`` as consecutive WebSocket text messages (RFC 6455 section 5.2: final, unmasked as a server sends
    them, uncompressed), one ``bytes`` to write at once: the same bytes as one ``send_str`` each, in one system
    call instead of one a message."""
    parts: list[bytes] = []
    for text in texts:
        data = text.encode()
        n = len(data)
        if n < 126:
            parts.append(_LEN1(0x81, n))
        elif n < 65536:
            parts.append(_LEN2(0x81, 126, n))
        else:
            parts.append(_LEN3(0x81, 127, n))
        parts.append(data)
    return b"".join(parts)


_LEN1 = struct.Struct("!BB").pack
_LEN2 = struct.Struct("!BBH").pack
_LEN3 = struct.Struct("!BBQ").pack
