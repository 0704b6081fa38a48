"""Commands to a running stream process over the channel layer (``manage.py feed drop``, the live page's button).

The wire the web and the stream share: the command's group and its drop modes. The stream package
(``markets.stream.control``) receives what this module sends; this module never imports the stream, so the web
process that asks for a drop does not load it.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .venues import KNOWN_EXCHANGES

DROP_MODES = ("close", "stall")  # close the socket now, or lose its frames until the watchdog gives it up
MAX_DROP_SECONDS = 3600.0


def control_group(exchange: str) -> str:
    """The channel-layer group the stream of ``exchange`` listens to for commands."""
    return f"feed.{exchange}"


class ControlUnavailable(Exception):
    """The channel layer (Redis) cannot be reached: the command went nowhere."""


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


def request_drop(exchange: str, seconds: float, mode: str = "close") -> None:
    """Ask the stream of ``exchange`` to take its socket down for ``seconds`` (``mode`` close or stall).
    Raises ValueError naming the bad argument, ControlUnavailable when Redis cannot be reached."""
    if problems := drop_problems(exchange, seconds, mode):
        raise ValueError("; ".join(f"{k}: {v}" for k, v in problems.items()))
    try:
        async_to_sync(get_channel_layer().group_send)(
            control_group(exchange), {"type": "feed.drop", "seconds": seconds, "mode": mode}
        )
    except (OSError, ConnectionError) as exc:
        raise ControlUnavailable(f"the channel layer (Redis) cannot be reached: {exc}") from None
