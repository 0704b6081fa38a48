"""/_sim/truth and /_sim/status: what each venue printed, and how the simulator stands."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..binance import wire
from ..engine.market import now_ms
from ..engine.tape import Tape
from ..sockets import client_gone
from .inputs import ControlError, venue_tape

if TYPE_CHECKING:
    from ..server import Simulator

TRUTH_PAGE = 5000
TRUTH_MAX = 5_000_000
TRUTH_PARAMS = ("venue", "symbol", "kind", "from_id", "to_id", "start_ms", "end_ms")


class Truth:
    """The read side of the control API."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._rendered: dict[str, tuple[tuple[Any, ...], str]] = {}  # tape key -> (what it showed, its JSON)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/_sim/truth", self.truth), web.get("/_sim/status", self.status)]

    def _numbers(self, q: Any) -> dict[str, int]:
        nums = {}
        for name in ("from_id", "to_id", "start_ms", "end_ms"):
            raw = q.get(name)
            if raw not in (None, ""):
                if not re.fullmatch(r"[0-9]{1,18}", raw):
                    raise ControlError(f"'{name}' must be a non-negative integer, got {raw!r}")
                nums[name] = int(raw)
        if ("from_id" in nums or "to_id" in nums) and ("start_ms" in nums or "end_ms" in nums):
            raise ControlError("give ids (from_id/to_id) or times (start_ms/end_ms), not both")
        return nums

    async def truth(self, request: web.Request) -> web.StreamResponse:
        """Everything a venue symbol printed (outliers included, silences left out, forgotten REST history
        kept), one JSON object a line in the venue's shape, by ids or by times."""
        q = request.query
        unknown = [k for k in q if k not in TRUTH_PARAMS]
        if unknown:  # a misspelt bound would otherwise stream the whole tape
            raise ControlError(f"unknown parameter {unknown[0]!r}; expected one of {list(TRUTH_PARAMS)}")
        name = q.get("venue", "binance")
        if name not in self.sim.venues:
            raise ControlError(f"unknown venue {name!r}; known: {sorted(self.sim.venues)}")
        venue = self.sim.venues[name]
        tape = self.sim.market.tapes[venue_tape(self.sim, name, q.get("symbol", ""))]
        kind = q.get("kind", venue.truth_kinds[0])
        if kind not in venue.truth_kinds:
            raise ControlError(f"'kind' must be one of {list(venue.truth_kinds)} on venue {name!r}, got {kind!r}")
        nums = self._numbers(q)
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        pages = _pages(tape, kind, nums)

        def chunk() -> bytes | None:  # on a history worker: a page may lie in blocks not generated yet
            page = next(pages, None)
            if page is None:
                return None
            rows = venue.truth_rows(tape.spec, kind, page)
            return ("\n".join(json.dumps(r, separators=(",", ":")) for r in rows) + "\n").encode()

        while (data := await self.sim.market.offload.run(chunk, gone=client_gone(request))) is not None:
            await resp.write(data)
        await resp.write_eof()
        return resp

    async def status(self, request: web.Request) -> web.Response:
        """The market, faults and every venue; ``symbols`` holds Binance's tapes (as before other venues
        existed), ``venues.<name>.symbols`` each venue's by its own symbol names. Each venue says how many stream
        sockets are open (``open_sockets``) and how many it has accepted since the start
        (``connections_opened``: refused attempts are not counted), so a test can tell a reconnect happened.
        ``universe`` is null, or the ``--universe`` size with each venue's count of symbols and of silent ones.
        ``loop_lag_max_ms`` is the longest the event loop kept the clock waiting since the start; ``history_warming``
        whether the history warm-up (a worker busy for minutes with a universe) still runs."""
        market = self.sim.market
        symbols: dict[str, list[str]] = {name: [] for name in self.sim.venues}
        for key in market.tapes:
            symbols[market.venue_of[key]].append(self._tape_json(key))
        objects = {name: "{" + ",".join(parts) + "}" for name, parts in symbols.items()}
        venues = ",".join(
            f"{_dumps(name)}:{_with(_dumps(v.status()), 'symbols', objects[name])}"
            for name, v in self.sim.venues.items()
        )
        head = {
            "server_time": now_ms(),
            "started_ms": market.started_ms,
            "rate": market.rate,
            "paused": market.paused,
            "loop_lag_max_ms": round(market.lag_max_ms, 1),
            "history_warming": market.warming,
            "faults_injected": dict(self.sim.faults.injected),
            "universe": self.sim.universe.status() if self.sim.universe else None,
        }
        body = _with(_with(_dumps(head), "symbols", objects["binance"]), "venues", "{" + venues + "}")
        return web.Response(text=body, content_type="application/json")

    def _tape_json(self, key: str) -> str:
        """``"<symbol>":{...}`` of one tape, rendered again only when something it shows changed: the status of a
        universe is 900 of them, and rendering them all took 4.5 ms of the loop a request."""
        market, tape = self.sim.market, self.sim.market.tapes[key]
        forgotten = self.sim.faults.forgotten.get(key)
        state = (
            market.emitted[key],
            market.last[key],
            market.stale_until.get(key),
            len(tape.offsets),
            tuple(forgotten) if forgotten else None,
            len(tape.blocks) > 0,  # with no block yet, history_from_ms follows the clock
        )
        cached = self._rendered.get(key)
        if cached is not None and cached[0] == state and state[-1]:
            return cached[1]
        text = f"{_dumps(tape.spec.symbol)}:{_dumps(self._tape_status(key))}"
        self._rendered[key] = (state, text)
        return text

    def _tape_status(self, key: str) -> dict[str, Any]:
        market = self.sim.market
        tape = market.tapes[key]
        last_trade_id, last_agg_id, last_price = market.last[key]
        info: dict[str, Any] = {
            "kind": market.kinds[key],
            "trades_emitted": market.emitted[key],
            "last_trade_id": last_trade_id,
            "last_agg_id": last_agg_id,
            "last_price": wire.fmt(last_price, tape.spec.price_dp),
            "first_trade_id": tape.blocks[0].first_id if tape.blocks else None,
            "history_from_ms": tape.first_time,
        }
        if key in market.stale_until:
            info["stale_until_ms"] = market.stale_until[key]
        if tape.offsets:
            info["outliers"] = [list(w) for w in tape.offsets]
        if key in self.sim.faults.forgotten:
            info["rest_forgotten"] = [list(r) for r in self.sim.faults.forgotten[key]]
        if key in market.replays:
            r = market.replays[key]
            info.update({"replay_source": r.source, "replay_time_shift_ms": r.time_shift, "replay_loop_ms": r.loop_ms})
        return info


def _pages(tape: Tape, kind: str, nums: dict[str, int]) -> Any:
    """Pages of the tape's trades (or aggregate trades) within the bounds, paged by id; a time range first
    finds its first id."""
    lo_id, hi_id = nums.get("from_id", 0), nums.get("to_id", 2**62)
    hi_t = nums.get("end_ms", 2**62)
    trades = kind == "trades"
    if "start_ms" in nums:
        first = (tape.trades_between if trades else tape.aggs_between)(nums["start_ms"], hi_t, 1)
        lo_id = int(first.ids[0] if trades else first.agg_ids[0]) if len(first) else 2**62
    page_of = tape.trades_from_id if trades else tape.aggs_from_id
    sent = 0
    while sent < TRUTH_MAX and lo_id <= hi_id:
        page = page_of(lo_id, TRUTH_PAGE)
        ids = page.ids if trades else page.agg_ids
        keep = int(((ids <= hi_id) & (page.times <= hi_t)).sum())
        if keep == 0:
            return
        yield page[:keep]
        sent += keep
        lo_id = int(ids[keep - 1]) + 1
        if keep < len(ids) or len(ids) < TRUTH_PAGE:
            return


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _with(obj: str, name: str, value: str) -> str:
    """The JSON object text ``obj`` with the member ``name`` (JSON text ``value``) added at its end."""
    return f"{obj[:-1]}{',' if obj != '{}' else ''}{_dumps(name)}:{value}}}"
