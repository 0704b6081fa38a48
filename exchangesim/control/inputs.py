"""Reading control requests: JSON bodies, typed fields and venue symbols, with 400s that name the field."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..engine.market import tape_key

if TYPE_CHECKING:
    from ..server import Simulator


class ControlError(Exception):
    """Bad input to the control API: answered 400 with a message naming the field."""


def field(
    body: dict[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    default: Any = ...,
    check: Callable[[Any], bool] | None = None,
    hint: str = "",
) -> Any:
    """``body[name]`` checked against ``kind`` and ``check``; ``default`` when absent (required without one)."""
    if name not in body:
        if default is ...:
            raise ControlError(f"'{name}' is required")
        return default
    value = body[name]
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ControlError(f"'{name}' must be {hint or kind}, got {value!r}")
    if not isinstance(value, kind) or (check is not None and not check(value)):
        raise ControlError(f"'{name}' must be {hint or kind}, got {value!r}")
    return value


async def read_body(request: web.Request, venues: Collection[str], *fields: str) -> dict[str, Any]:
    """The JSON object of a control request; a field other than ``venue`` and ``fields`` is an error
    (a misspelt option would otherwise be silently ignored), as is a venue the simulator does not serve."""
    try:
        body = await request.json(loads=json.loads) if request.can_read_body else {}
    except ValueError as exc:
        raise ControlError(f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ControlError("the body must be a JSON object")
    unknown = [k for k in body if k != "venue" and k not in fields]
    if unknown:
        raise ControlError(f"unknown field {unknown[0]!r}; expected one of {['venue', *fields]}")
    venue = body.get("venue", "binance")
    if not isinstance(venue, str) or venue not in venues:
        raise ControlError(f"unknown venue {venue!r}; known: {sorted(venues)}")
    return body


def venue_tape(sim: Simulator, venue: str, symbol: object) -> str:
    """The market's tape key of ``symbol`` on ``venue``, or a 400 listing the venue's symbols."""
    known = sorted(sim.market.specs_of(venue))
    key = tape_key(venue, symbol) if isinstance(symbol, str) else None
    if isinstance(symbol, str) and key not in sim.market.tapes and venue in sim.venues:
        # Another spelling the venue reads (Kraken's altname XBTUSD for XBT/USD).
        with contextlib.suppress(ValueError):
            key = tape_key(venue, type(sim.venues[venue]).spec(symbol).symbol)
    if key is None or key not in sim.market.tapes or sim.market.venue_of[key] != venue:
        raise ControlError(f"unknown symbol {symbol!r} on venue {venue!r}; known: {known}")
    return key
