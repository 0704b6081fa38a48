"""The Kraken venue's errors and faults: the error envelope, the call counter, injected REST faults, and
forgotten history (skipped by REST, kept by truth).
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from exchangesim.engine.aggregate import MINUTE
from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.kraken_client import Kr, kr_get, post
from tests.exchangesim.test_coinbase import truth


async def test_envelope_errors(kr: Kr) -> None:
    """Errors come in the envelope with HTTP 200: an unknown pair, a missing or bad parameter; an unknown
    method is a 404 with EGeneral:Unknown method."""
    sim, http = kr
    unknown = (200, {"error": ["EQuery:Unknown asset pair"], "result": {}})
    invalid = (200, {"error": ["EGeneral:Invalid arguments"], "result": {}})
    for method in ("Trades", "OHLC"):
        assert await kr_get(http, sim, method, pair="NOPEUSD") == unknown
        assert await kr_get(http, sim, method) == invalid
    for bad in (
        {"count": 0},
        {"count": 1001},
        {"count": "x"},
        {"since": "abc"},
        {"since": "-5"},
        {"since": "1700000000000000000.5"},
    ):
        assert await kr_get(http, sim, "Trades", pair="XBTUSD", **bad) == invalid, bad
    for bad in ({"interval": 2}, {"interval": "1m"}, {"since": "yesterday"}):
        assert await kr_get(http, sim, "OHLC", pair="XBTUSD", **bad) == invalid, bad
    assert await kr_get(http, sim, "Depthless") == (404, {"error": ["EGeneral:Unknown method"]})


async def test_call_counter_rate_limit() -> None:
    """The 16th request in a burst is answered {"error":["EAPI:Rate limit exceeded"]} with HTTP 200; the
    counter decays one a second; /_sim/reset forgets it; status shows it."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        answers = [await kr_get(http, sim, "Time") for _ in range(16)]
        assert all(a[1]["error"] == [] for a in answers[:15])
        assert answers[15] == (200, {"error": ["EAPI:Rate limit exceeded"]})
        async with http.get(f"{sim.url}/_sim/status") as r:
            st = (await r.json())["venues"]["kraken"]
        assert st["call_limit"] == 15
        assert max(st["call_counter"].values()) > 14
        await asyncio.sleep(1.1)
        assert (await kr_get(http, sim, "Time"))[1]["error"] == []
        assert (await kr_get(http, sim, "Time"))[1]["error"] == ["EAPI:Rate limit exceeded"]
        await post(http, sim, "/_sim/reset", {})
        assert (await kr_get(http, sim, "Time"))[1]["error"] == []


async def test_injected_rest_faults(kr: Kr) -> None:
    """/_sim/rest/fault with venue kraken answers Kraken's paths (with or without the prefix) with the status
    and an envelope error, Retry-After on a 429; other venues are untouched; a delay delays."""
    sim, http = kr
    await post(
        http, sim, "/_sim/rest/fault", {"venue": "kraken", "path_prefix": "/0/public/Trades", "status": 503, "count": 1}
    )
    await post(
        http,
        sim,
        "/_sim/rest/fault",
        {"venue": "kraken", "path_prefix": "/kraken/0/public/OHLC", "status": 429, "count": 1},
    )
    assert (await kr_get(http, sim, "Time"))[1]["error"] == []
    assert await kr_get(http, sim, "Trades", pair="XBTUSD") == (503, {"error": ["EService:Unavailable"]})
    async with http.get(f"{sim.venue_url('kraken')}/0/public/OHLC", params={"pair": "XBTUSD"}) as r:
        assert (r.status, r.headers["Retry-After"], await r.json()) == (
            429,
            "1",
            {"error": ["EAPI:Rate limit exceeded"]},
        )
    assert (await kr_get(http, sim, "Trades", pair="XBTUSD", count=1))[1]["error"] == []
    await post(http, sim, "/_sim/rest/fault", {"venue": "kraken", "path_prefix": "/0/public/Time", "delay_ms": 300})
    started = time.monotonic()
    assert (await kr_get(http, sim, "Time"))[1]["error"] == []
    assert time.monotonic() - started >= 0.3


async def test_forgotten_history_is_skipped_by_rest_not_truth(kr: Kr) -> None:
    """Trades forgotten by /_sim/rest/forget are left out of Trades pages (the page goes on after them) and
    the OHLC bar holding them is left out; truth still has them."""
    sim, http = kr
    end = sim.market.started_ms // MINUTE * MINUTE - 5 * MINUTE
    want = await truth(http, sim, venue="kraken", symbol="XBT/USD", start_ms=end - 60_000, end_ms=end - 1)
    hole = want[10:20]
    await post(
        http,
        sim,
        "/_sim/rest/forget",
        {"venue": "kraken", "symbol": "XBTUSD", "start_ms": hole[0]["time_ms"], "end_ms": hole[-1]["time_ms"]},
    )
    _, body = await kr_get(http, sim, "Trades", pair="XBTUSD", since=int(want[0]["time_ns"]) - 1, count=30)
    ids = [r[6] for r in body["result"]["XXBTZUSD"]]
    kept = [w["trade_id"] for w in want if not hole[0]["time_ms"] <= w["time_ms"] <= hole[-1]["time_ms"]]
    assert ids == kept[:30]
    _, body = await kr_get(http, sim, "OHLC", pair="XBTUSD")
    opens = [r[0] for r in body["result"]["XXBTZUSD"]]
    assert (end - 60_000) // 1000 not in opens
    assert end // 1000 in opens
    again = await truth(http, sim, venue="kraken", symbol="XBT/USD", start_ms=end - 60_000, end_ms=end - 1)
    assert again == want
