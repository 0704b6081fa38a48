"""The ports ``make run`` listens on: read from the environment, and held before anything starts.

A port is checked by binding it the way the servers will (``SO_REUSEADDR``, as Twisted and aiohttp do, so a
connection of a just-stopped run in TIME_WAIT is no obstacle) and listening on it. Then ``make run`` holds it
until the server that owns it starts: a socket bound without ``SO_REUSEADDR`` and not listening, so that any
other bind of the port fails (a second ``make run`` sees it taken) while a browser's connection is refused at
once rather than left hanging. Nothing here imports Django.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

SUGGEST_AFTER = 50  # how many ports after a taken one are tried for a free one to suggest


class PortError(RuntimeError):
    """A port variable is malformed, or the port cannot be had; the message says what to do."""


def port_setting(environ: Mapping[str, str], name: str, default: int) -> int:
    """The TCP port in ``environ[name]`` (``default`` when unset or empty); PortError naming ``name`` and the
    value when it is not a whole number from 1 to 65535."""
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise PortError(f"{name}={raw!r} is not a port: expected a whole number from 1 to 65535, e.g. {default}")
    return port


class HeldPort:
    """A port kept from other programs until ``release()`` (or the end of a ``with`` block)."""

    def __init__(self, sock: socket.socket | None) -> None:
        self._sock = sock

    def release(self) -> None:
        """Let the port go, for the server that owns it to bind it now."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> HeldPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold_port(host: str, port: int, *, what: str, variable: str, retry: str) -> HeldPort:
    """Check that ``host:port`` is free and hold it until the real server is about to bind it. (A free port
    that cannot be held, e.g. while connections of a run that just stopped are in TIME_WAIT, is only checked.)

    PortError when the port is taken, saying whose port it is (``what``: "the site's") and how to run ``retry``
    (``"make run"``) on another port through ``variable``; or when ``host`` is no address of this machine, or
    the port needs privileges.
    """
    try:
        _listen(host, port).close()
    except socket.gaierror as exc:
        raise PortError(
            f"cannot listen on host {host!r} ({exc.strerror}): set WEB_HOST to an address of this machine"
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            other = _free_port_after(host, port)
            instead = f"run {variable}={other} {retry}" if other else f"set {variable} to a free port"
            raise PortError(
                f"{what} port {port} on {host} is in use (by another make run?): stop what holds it, or {instead}"
            ) from None
        if exc.errno == errno.EACCES:
            raise PortError(
                f"{what} port {port} on {host} needs privileges this user lacks: set {variable} to a port above 1023"
            ) from None
        raise PortError(f"cannot listen on {host}:{port} ({exc.strerror}): check WEB_HOST and {variable}") from None
    family, kind, proto, _, address = _address(host, port)
    sock = socket.socket(family, kind, proto)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        return HeldPort(None)
    return HeldPort(sock)


def _address(host: str, port: int) -> tuple:
    """The first TCP address of ``host:port`` to listen on (an item of ``socket.getaddrinfo``)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound as the servers bind (``SO_REUSEADDR``) and listening; OSError when that fails."""
    family, kind, proto, _, address = _address(host, port)
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1)
    except OSError:
        sock.close()
        raise
    return sock


def _free_port_after(host: str, port: int) -> int | None:
    """The first port after ``port`` that ``host`` can bind right now (a suggestion only), or None."""
    for candidate in range(port + 1, min(port + SUGGEST_AFTER, 65535) + 1):
        try:
            _listen(host, candidate).close()
        except OSError:
            continue
        return candidate
    return None
