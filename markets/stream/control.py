"""Commands to a running stream, received over the channel layer: ``feed.drop`` from ``manage.py feed drop`` and
the live page's staff button (sent by ``markets.control``, which owns the group name and the drop modes)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from channels.layers import get_channel_layer

from ..control import DROP_MODES, MAX_DROP_SECONDS, control_group

log = logging.getLogger(__name__)


async def receive_commands(exchange: str, drop: Callable[[float, str], None]) -> None:
    """Listen on ``exchange``'s control group until cancelled; each valid ``feed.drop`` calls ``drop(seconds,
    mode)``. Without a channel layer it returns at once: the stream runs, it just cannot be told anything."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        channel = await layer.new_channel()
        await layer.group_add(control_group(exchange), channel)
    except (OSError, ConnectionError) as exc:
        log.warning("%s: no channel layer (%s); feed commands will not reach this stream", exchange, exc)
        return
    while True:
        try:
            message = await layer.receive(channel)
        except Exception as exc:  # the control channel must outlive any Redis hiccup
            log.warning("%s: channel layer error: %r", exchange, exc)
            await asyncio.sleep(1)
            continue
        if message.get("type") == "feed.drop":
            seconds = message.get("seconds")
            mode = message.get("mode", "close")
            if isinstance(seconds, int | float) and 0 < seconds <= MAX_DROP_SECONDS and mode in DROP_MODES:
                drop(float(seconds), mode)
            else:
                log.warning("%s: bad feed command ignored: %r", exchange, message)
