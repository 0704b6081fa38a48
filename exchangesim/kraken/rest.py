"""Kraken public REST under ``/kraken/0/public/``: Time, Assets, AssetPairs, Trades (paged by ``since``), OHLC.

Every answer is the envelope ``{"error": [...], "result": {...}}`` with HTTP 200, errors included
(``EQuery:Unknown asset pair``, ``EGeneral:Invalid arguments``). Readings of the reference
(``reference/exchange-protocols.md`` section 6) the simulator commits to:
- ``pair`` is the altname (``XBTUSD``), the result key (``XXBTZUSD``), the v1 name (``XBT/USD``) or the
  WebSocket v2 name (``BTC/USD``), in any case; the result is keyed by the result key.
- Trades: ``since`` is nanoseconds, or seconds (decimals allowed) when below 1e12; the answer holds the
  ``count`` (1..1000, default 1000) trades with times strictly after it, oldest first (each trade's ns time
  is its own: see ``wire``), and ``last`` is the ns time of the last trade returned (``since`` when none).
  Without ``since``: the latest ``count`` trades. History the venue forgot (``/_sim/rest/forget``) is
  skipped.
- OHLC: ``interval`` (minutes) in {1, 5, 15, 30, 60, 240, 1440, 10080, 21600}, default 1; bars open at
  multiples of the interval since the epoch. The answer is the 720 committed bars before the current one
  plus the current, still-open bar (721 rows, as the recorded capture holds), fewer when the simulated
  history is shorter; minutes without trades are flat bars at the previous close with count 0. ``since``
  (seconds) keeps the bars opening strictly after it, the open bar always. ``last`` is the open time of the
  last committed bar. A bar holding a forgotten trade is left out.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web

from ..engine.aggregate import MINUTE, Agg, combine
from ..engine.batch import TradeBatch
from ..engine.tape import Tape
from ..sockets import client_gone
from ..symbols import SymbolSpec
from . import pairs, wire

if TYPE_CHECKING:
    from .venue import KrakenVenue

INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
MAX_BARS = 720
MAX_TRADES = 1000
UNKNOWN_PAIR = "EQuery:Unknown asset pair"
INVALID = "EGeneral:Invalid arguments"


def _compact(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


def envelope(
    result: object = None, errors: list[str] | None = None, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """``{"error": [...], "result": ...}`` (no ``result`` when it is None), written compactly."""
    body: dict[str, object] = {"error": errors or []}
    if result is not None:
        body["result"] = result
    return web.json_response(body, status=status, headers=headers, dumps=_compact)


class KrakenError(Exception):
    """An error answered in the envelope (HTTP 200 unless ``status`` says otherwise)."""

    def __init__(
        self, error: str, status: int = 200, *, result: bool = True, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.error, self.status, self.result, self.headers = error, status, result, headers or {}

    def response(self) -> web.Response:
        return envelope({} if self.result else None, [self.error], self.status, self.headers)


def _int(raw: str | None, lo: int, hi: int, default: int) -> int:
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", raw) or not lo <= int(raw) <= hi:
        raise KrakenError(INVALID)
    return int(raw)


def parse_since_ns(raw: str) -> int:
    """Trades' ``since``: nanoseconds, or seconds (decimals allowed) when the value is below 1e12."""
    if not re.fullmatch(r"[0-9]{1,20}(\.[0-9]{0,9})?", raw):
        raise KrakenError(INVALID)
    value = Decimal(raw)
    if value < 10**12:
        return int(value * 10**9)
    if value != value.to_integral_value() or value >= 2**63:
        raise KrakenError(INVALID)
    return int(value)


class PublicRest:
    """Handlers of the public endpoints."""

    def __init__(self, venue: KrakenVenue) -> None:
        self.venue = venue
        self.market = venue.market

    def routes(self) -> list[web.RouteDef]:
        p = f"{self.venue.prefix}/0/public"
        return [
            web.get(f"{p}/Time", self.time),
            web.get(f"{p}/Assets", self.assets),
            web.get(f"{p}/AssetPairs", self.asset_pairs),
            web.get(f"{p}/Trades", self.trades),
            web.get(f"{p}/OHLC", self.ohlc),
        ]

    def _pair(self, request: web.Request) -> SymbolSpec:
        raw = request.query.get("pair")
        if not raw:
            raise KrakenError(INVALID)
        spec = self.venue.pair(raw)
        if spec is None:
            raise KrakenError(UNKNOWN_PAIR)
        return spec

    async def time(self, request: web.Request) -> web.Response:
        t = self.venue.server_time() // 1000
        rfc = datetime.fromtimestamp(t, tz=UTC).strftime("%a, %d %b %y %H:%M:%S +0000")
        return envelope({"unixtime": t, "rfc1123": rfc})

    async def assets(self, request: web.Request) -> web.Response:
        assets = sorted({a for s in self.venue.specs.values() for a in (s.base, s.quote)})
        entries = dict(pairs.asset_entry(a) for a in assets)
        wanted = request.query.get("asset")
        if wanted:
            codes = [pairs.LEGACY.get(pairs.canonical(a), pairs.canonical(a)) for a in wanted.split(",")]
            if any(c not in entries for c in codes):
                raise KrakenError("EQuery:Unknown asset")
            entries = {c: entries[c] for c in codes}
        return envelope(entries)

    async def asset_pairs(self, request: web.Request) -> web.Response:
        raw = request.query.get("pair")
        specs = list(self.venue.specs.values())
        if raw is not None:
            specs = []
            for name in raw.split(","):
                spec = self.venue.pair(name)
                if spec is None:
                    raise KrakenError(UNKNOWN_PAIR)
                specs.append(spec)
        return envelope({pairs.names(s).key: pairs.asset_pair(s) for s in specs})

    async def trades(self, request: web.Request) -> web.Response:
        spec = self._pair(request)
        q = request.query
        count = _int(q.get("count"), 1, MAX_TRADES, MAX_TRADES)
        tape = self.venue.tape(spec.symbol)
        served = self.venue.served(spec.symbol)
        since = parse_since_ns(q["since"]) if q.get("since") else None

        def page() -> tuple[list, list[int]]:  # on a history worker: the page may lie in blocks not generated yet
            if since is None:
                trades = served.trades_recent(count)
            else:
                from_id = _first_id_after(tape, since)
                trades = served.trades_from_id(from_id, count) if from_id is not None else TradeBatch.empty()
            return wire.rest_trades(spec, tape, trades)

        rows, ns = await self.market.offload.run(page, gone=client_gone(request))
        last = ns[-1] if ns else (since or 0)
        return envelope({pairs.names(spec).key: rows, "last": str(last)})

    async def ohlc(self, request: web.Request) -> web.Response:
        spec = self._pair(request)
        q = request.query
        minutes = _int(q.get("interval"), 1, 21600, 1)
        if minutes not in INTERVALS:
            raise KrakenError(INVALID)
        since = _int(q.get("since"), 0, 10**12, -1) if q.get("since") else None
        rows, last = await self.market.offload.run(
            self.bars, spec, minutes, since, kind="candles", gone=client_gone(request)
        )
        return envelope({pairs.names(spec).key: rows, "last": last})

    def bars(self, spec: SymbolSpec, minutes: int, since_s: int | None) -> tuple[list[list[object]], int]:
        """The OHLC rows of a pair (see the module docstring) and ``last``."""
        tape = self.venue.tape(spec.symbol)
        step = minutes * MINUTE
        current = tape.emitted_ms // step * step
        first = max(current - MAX_BARS * step, tape.first_time // step * step)
        opens = list(range(first, current + step, step))
        ranges = self.venue.served(spec.symbol).ranges
        rows = []
        for o, agg, prev in bar_aggs(tape, opens, step):
            if since_s is not None and o <= since_s * 1000 and o != current:
                continue
            if any(a < o + step and o <= b for a, b in ranges):
                continue
            rows.append(wire.ohlc_row(spec, o, agg, prev))
        return rows, (current - step) // 1000


def bar_agg(tape: Tape, open_ms: int, step: int) -> Agg | None:
    """The aggregate of the bar opening at ``open_ms`` (None without trades), from cached minutes."""
    return combine([tape.minute_agg(m) for m in range(open_ms, min(open_ms + step, tape.emitted_ms + 1), MINUTE)])


def bar_aggs(tape: Tape, opens: list[int], step: int) -> list[tuple[int, Agg | None, int]]:
    """``(open, aggregate or None, previous close)`` for consecutive bars; bars without trades are flat at the
    previous close (the start price before the first trade)."""
    out: list[tuple[int, Agg | None, int]] = []
    prev: int | None = None
    for o in opens:
        agg = bar_agg(tape, o, step)
        if prev is None:
            p = tape.price_before(o)
            prev = p if p is not None else round(tape.spec.start_price * tape.spec.price_scale)
        out.append((o, agg, prev))
        if agg is not None:
            prev = agg.close
    return out


def _first_id_after(tape: Tape, since_ns: int) -> int | None:
    """The id of the first trade whose ns time (see ``wire.ns_times``) is after ``since_ns``, or None when no
    trade is public after it yet."""
    t_ms, rank = divmod(since_ns, wire.NS_PER_MS)
    same = tape.trades_between(t_ms, t_ms, 1_000_000)
    if rank + 1 < len(same):
        return int(same.ids[rank + 1])
    after = tape.trades_between(t_ms + 1, 2**62, 1)
    return int(after.ids[0]) if len(after) else None
