"""The fan-out of a universe, as the code guarantees it (no timings): a tick's frames for many streams go out in
chunks with the event loop given back between them, so a ``/_sim/status`` request is answered while a large batch
is still being written, and none of the frames is lost, doubled or reordered; aggregate trades built only when a
subscriber asks for them are numbered as if always built; and the live blocks of a universe's tapes do not all
end in the same tick."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from typing import Any

import aiohttp
import numpy as np

from exchangesim.config import SimConfig
from exchangesim.engine.aggregate import MINUTE
from exchangesim.engine.batch import aggregate_trades
from exchangesim.engine.market import Market, now_ms
from exchangesim.server import VENUES, Simulator
from exchangesim.universe import Universe
from tests.conftest import sim_config

T0 = 1_722_470_400_000  # 2024-08-01 00:00 UTC


async def _until(condition: Any, seconds: float = 10.0) -> None:
    """Wait (giving the loop back) until ``condition()`` holds; fail after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_a_status_request_is_answered_between_two_chunks_of_a_large_batch_and_no_frame_is_lost() -> None:
    """A universe's Binance symbols on one combined socket; the clock is held (a tick an hour) and one tick by hand
    makes three seconds of trades public at once: thousands of frames queued as one batch. The batch is written in
    chunks of at most ``CHUNK_FRAMES`` messages, and a status request sent as the tick is made is answered before
    the last chunk is written. The client then holds every trade of every stream exactly once, in id order, from
    the first id after the tick before to the last the tick emitted, and nothing else."""
    config = sim_config(universe=30, rate=4000.0, history_days=0.0, tick_ms=3_600_000)
    async with Simulator(config) as sim, aiohttp.ClientSession() as http:
        server = sim.binance.streams
        symbols = sorted(sim.market.specs_of("binance"))
        streams = "/".join(f"{s.lower()}@trade" for s in symbols)
        ws = await http.ws_connect(f"{sim.ws_url}/stream?streams={streams}", max_msg_size=0)
        await _until(lambda: len(server.conns) == 1)
        async with http.get(f"{sim.url}/_sim/status") as r:  # the connection the status request will reuse
            assert r.status == 200
        events: list[tuple[str, int]] = []
        write = server._write

        async def recorded(conn: Any, frames: list[str]) -> bool:
            events.append(("chunk", len(frames)))
            return await write(conn, frames)

        server._write = recorded  # type: ignore[method-assign]
        before = {s: sim.market.last[s][0] for s in symbols}

        async def status() -> None:
            async with http.get(f"{sim.url}/_sim/status") as r:
                assert r.status == 200
                await r.json()
            events.append(("status", 0))

        emissions = sim.market.tick(now_ms() + 3000)
        asker = asyncio.create_task(status())
        expected = {e.symbol: e.trades.ids.tolist() for e in emissions if e.venue == "binance"}
        total = sum(map(len, expected.values()))
        assert total > 20 * server.CHUNK_FRAMES, "a batch of many chunks"

        got: dict[str, list[int]] = {}
        received = 0
        while received < total:
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            frame = msg.json()
            assert list(frame) == ["stream", "data"]
            got.setdefault(frame["data"]["s"], []).append(frame["data"]["t"])
            received += 1
        await asyncio.wait_for(asker, 10)
        await ws.close()

    chunks = [n for kind, n in events if kind == "chunk"]
    assert sum(chunks) == total
    assert max(chunks) <= server.CHUNK_FRAMES
    answered = [kind for kind, _ in events].index("status")
    assert answered < len(events) - 1, f"the status was answered after the last of {len(chunks)} chunks"
    assert got == expected
    for sym, ids in got.items():
        assert ids == list(range(before[sym] + 1, before[sym] + 1 + len(ids))), sym


def _market(n: int, rate: float, start_ms: int, history_days: float = 0.0) -> Market:
    u = Universe(SimConfig(universe=n, rate=rate), VENUES)
    return Market(symbols=(), rate=rate, seed=u.seed, history_days=history_days, start_ms=start_ms, listings=u.listings)


def test_aggregate_ids_stay_contiguous_whether_aggregates_are_built_or_not() -> None:
    """Ticked by hand, a market's emissions are numbered from where the previous emission of the tape ended, whether
    or not anyone read the previous ``aggs``; read, they equal the aggregation of the emitted trades and the tape's
    own aggregate trades (what REST and the truth serve), and the status counters hold the last one."""
    m = _market(10, 2000.0, T0 + 12 * 3_600_000, history_days=0.05)
    read: dict[str, int] = {}  # tape -> the next aggregate id expected
    for i, t in enumerate(range(m.started_ms + 20, m.started_ms + 20_000, 250)):
        for e in m.tick(t):
            assert e.first_agg == read.get(e.symbol, e.first_agg)
            if i % 3 == 0:  # two ticks in three nobody reads them
                aggs = e.aggs
                assert aggs is e.aggs, "built once"
                want = aggregate_trades(e.trades, e.first_agg)
                assert all(np.array_equal(getattr(aggs, f), getattr(want, f)) for f in want.__slots__)
                served = m.tapes[e.symbol].aggs_from_id(e.first_agg, len(aggs))
                assert np.array_equal(served.agg_ids, aggs.agg_ids)
                assert np.array_equal(served.qtys, aggs.qtys)
                last = int(aggs.agg_ids[-1])
            else:
                last = e.first_agg + len(aggregate_trades(e.trades, 0)) - 1
            assert m.last[e.symbol][1] == last
            read[e.symbol] = last + 1
    assert len(read) > 10


def test_the_live_blocks_of_a_universe_do_not_all_end_in_the_same_tick() -> None:
    """Ticked every 100 ms for 70 s from a minute's start, a universe of 100 symbols a venue (306 tapes, most with
    minute-long live blocks) starts a new live block in at most a few tapes in any one tick, the minute boundary
    included (each tape's blocks end at a phase of its own; they all ended on the minute, so one tick generated
    hundreds of blocks); every tape's live blocks still follow each other with contiguous ids."""
    m = _market(100, 3000.0, T0 + 12 * 3_600_000 + 5 * MINUTE)
    start = m.started_ms
    counts = {k: len(t.blocks) for k, t in m.tapes.items()}
    created: Counter[int] = Counter()
    for t in range(start + 100, start + MINUTE + 10_100, 100):
        m.tick(t)
        for k, tape in m.tapes.items():
            created[t] += len(tape.blocks) - counts[k]
            counts[k] = len(tape.blocks)
    assert len(m.tapes) == 306
    print("most blocks started in one tick:", created.most_common(3), "at the minute:", created[start + MINUTE])
    assert sum(created.values()) >= len(m.tapes), "every tape started a new block at least once"
    assert max(created.values()) <= 15, created.most_common(3)
    for tape in m.tapes.values():
        live = [b for b in tape.blocks if b.t_start >= start]
        for a, b in itertools.pairwise(live):
            assert b.t_start == a.t_end
            assert b.first_id == a.first_id + a.n
            assert b.first_agg == a.first_agg + a.k


async def test_the_status_rendered_from_kept_fragments_equals_a_fresh_rendering() -> None:
    """Ticked by hand with a stale window, an outlier and forgotten REST history set, every status answer (each
    tape's part rendered again only when what it shows changed) equals every tape's status rendered afresh."""
    sim = Simulator(SimConfig(port=0, universe=20, rate=3000.0, history_days=0.05))
    m, truth = sim.market, sim.control.truth
    t = m.started_ms + 2000
    m.set_stale(next(iter(m.tapes)), 5)
    for i in range(30):
        if i == 10:
            m.set_outlier("ETHUSDT", 50, 1)
            sim.faults.forgotten["BTCUSDT"] = [(1, 2)]
        m.tick(t)
        t += 50
        got = json.loads((await truth.status(None)).text)  # type: ignore[arg-type]
        for name in sim.venues:
            fresh = {m.tapes[k].spec.symbol: truth._tape_status(k) for k in m.tapes if m.venue_of[k] == name}
            assert got["venues"][name]["symbols"] == json.loads(json.dumps(fresh)), (i, name)
            assert {k: v for k, v in got["venues"][name].items() if k != "symbols"} == sim.venues[name].status()
        assert got["symbols"] == got["venues"]["binance"]["symbols"]
        assert got["history_warming"] is False
