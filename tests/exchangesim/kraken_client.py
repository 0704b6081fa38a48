"""Calls to the simulator's Kraken venue shared by the Kraken tests: its public REST methods, the control API,
and lifting the call counter so a test can page freely.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from exchangesim.server import Simulator

Kr = tuple[Simulator, aiohttp.ClientSession]  # what the ``kr`` fixture gives


async def kr_get(http: aiohttp.ClientSession, sim: Simulator, method: str, **params: object) -> tuple[int, Any]:
    """GET Kraken's public REST ``method`` with ``params``: the HTTP status and the JSON answer."""
    async with http.get(
        f"{sim.venue_url('kraken')}/0/public/{method}", params={k: str(v) for k, v in params.items()}
    ) as r:
        return r.status, await r.json()


async def post(http: aiohttp.ClientSession, sim: Simulator, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to the control API's ``path``, which must succeed: its JSON answer."""
    async with http.post(f"{sim.url}{path}", json=body) as r:
        reply = await r.json()
        assert r.status == 200, reply
        return reply


async def unlimited(http: aiohttp.ClientSession, sim: Simulator) -> None:
    """Raise Kraken's call counter limit so a test can page freely."""
    await post(http, sim, "/_sim/config", {"venue": "kraken", "weight_limit": 1_000_000})
