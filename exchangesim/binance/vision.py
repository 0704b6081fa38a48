"""Binance's public bulk files (https://data.binance.vision) for the simulator's history, on its own port.

Paths as Binance's (``<base>`` is the simulator's URL; ``BINANCE_DATA_URL`` points the project at it)::

    /data/spot/daily/aggTrades/<SYMBOL>/<SYMBOL>-aggTrades-<YYYY-MM-DD>.zip
    /data/spot/monthly/aggTrades/<SYMBOL>/<SYMBOL>-aggTrades-<YYYY-MM>.zip
    /data/spot/daily/klines/<SYMBOL>/<INTERVAL>/<SYMBOL>-<INTERVAL>-<YYYY-MM-DD>.zip
    /data/spot/monthly/klines/<SYMBOL>/<INTERVAL>/<SYMBOL>-<INTERVAL>-<YYYY-MM>.zip

each with ``<file>.zip.CHECKSUM`` holding ``<sha256 hex>  <file>.zip\\n``. A zip holds one CSV of the same name,
``<file>.csv`` (see ``vision_files.py`` for the rows). Klines intervals are those that divide a day, ``1s`` to ``1d``.

Files are written from the tape, the truth ``/_sim/truth`` streams: without ``/_sim/rest/forget`` they equal
``/api/v3/aggTrades`` and ``/api/v3/klines`` over the same times. A REST fault or the weight limit does not touch
them (Binance serves them from another host).

**Publication.** A UTC day is published once it is over by ``SimConfig.vision_delay`` seconds on the simulator's
clock (default 600: yesterday's files appear at 00:10 UTC), and only if the tape's history covers all of it; a
month likewise once it is over by the delay. Anything else (a day not published yet, before the history, an
unknown symbol or interval, a misspelt name) answers 404 with S3's ``NoSuchKey`` body.

**Cost.** A file is built on first request, on a history worker of its own kind ("files", one thread), so neither
the event loop nor the REST pages wait for it; two requests for one file share one build. Built zips are kept in a
temporary directory, least recently used dropped first beyond ``CACHE_BYTES``; their checksums are remembered, and
a file built again is byte for byte the same.
"""

from __future__ import annotations

import asyncio
import calendar
import re
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from ..engine.aggregate import DAY, INTERVAL_MS
from ..engine.tape import Tape
from . import vision_files

if TYPE_CHECKING:
    from .venue import BinanceVenue

KLINE_INTERVALS = tuple(i for i, ms in INTERVAL_MS.items() if ms and DAY % ms == 0)  # 1s .. 1d
_DAILY = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTHLY = re.compile(r"\d{4}-\d{2}")
_NOT_FOUND = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    "<Message>The specified key does not exist.</Message><Key>{key}</Key></Error>"
)
_SEND_CHUNK = 1 << 18


@dataclass(frozen=True, slots=True)
class FileKey:
    """One bulk file: symbol, kind ("aggTrades" or a klines interval), ``daily``/``monthly`` and its period."""

    symbol: str
    kind: str
    period: str  # "daily" or "monthly"
    date: str  # YYYY-MM-DD or YYYY-MM
    start_ms: int
    end_ms: int

    @property
    def zip_name(self) -> str:
        return f"{self.symbol}-{self.kind}-{self.date}.zip"

    @property
    def csv_name(self) -> str:
        return f"{self.symbol}-{self.kind}-{self.date}.csv"


@dataclass(frozen=True, slots=True)
class Built:
    path: Path
    size: int
    sha256: str


def period_bounds(period: str, text: str) -> tuple[int, int] | None:
    """``[start_ms, end_ms)`` of a daily (``YYYY-MM-DD``) or monthly (``YYYY-MM``) period, None if not one."""
    try:
        if period == "daily" and _DAILY.fullmatch(text):
            d = date.fromisoformat(text)
            start = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return _ms(start), _ms(start) + DAY
        if period == "monthly" and _MONTHLY.fullmatch(text):
            year, month = int(text[:4]), int(text[5:])
            start = datetime(year, month, 1, tzinfo=UTC)
            return _ms(start), _ms(start) + calendar.monthrange(year, month)[1] * DAY
    except ValueError:
        return None
    return None


def _ms(t: datetime) -> int:
    return int(t.timestamp()) * 1000


class FileCache:
    """Built zips on disk, least recently used removed first beyond ``max_bytes`` (the newest always stays)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.held = 0
        self.builds = 0  # files built since the start (a test can tell a hit from a build)
        self._dir: Path | None = None
        self._items: OrderedDict[FileKey, Built] = OrderedDict()
        self._building: dict[FileKey, asyncio.Future[Built]] = {}

    def directory(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="exchangesim-vision-"))
        return self._dir

    async def get(self, key: FileKey, build: Callable[[Path], Awaitable[str]]) -> Built:
        """The built file of ``key``; ``build(path) -> sha256`` is awaited (it runs off the loop) when missing."""
        hit = self._items.get(key)
        if hit is not None and hit.path.exists():
            self._items.move_to_end(key)
            return hit
        pending = self._building.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Built] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        try:
            path = self.directory() / f"{self.builds}-{key.zip_name}"
            self.builds += 1
            try:
                sha = await build(path)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            built = Built(path, path.stat().st_size, sha)
            self._put(key, built)
            future.set_result(built)
            return built
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a build nobody else waited for logs nothing
            raise
        finally:
            del self._building[key]

    def _put(self, key: FileKey, built: Built) -> None:
        self._items[key] = built
        self.held += built.size
        while self.held > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self.held -= old.size
            old.path.unlink(missing_ok=True)  # a response still reading it keeps its open handle

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._items.clear()
        self.held = 0


class Vision:
    """The routes of data.binance.vision over a Binance venue's tapes."""

    CACHE_BYTES = 512 << 20

    def __init__(self, venue: BinanceVenue, delay_s: float) -> None:
        self.venue = venue
        self.market = venue.market
        self.delay_ms = round(delay_s * 1000)
        self.cache = FileCache(self.CACHE_BYTES)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/data/spot/{period}/aggTrades/{symbol}/{name}", self.agg_trades),
            web.get("/data/spot/{period}/klines/{symbol}/{interval}/{name}", self.klines),
        ]

    async def agg_trades(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        return await self._serve(request, m["period"], m["symbol"], "aggTrades", m["name"])

    async def klines(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        if m["interval"] not in KLINE_INTERVALS:
            return _not_found(request)
        return await self._serve(request, m["period"], m["symbol"], m["interval"], m["name"])

    # -- what is published ------------------------------------------------------------------------
    def key(self, period: str, symbol: str, kind: str, name: str) -> tuple[FileKey, bool] | None:
        """The file ``name`` asks for and whether it is the CHECKSUM, or None when no such file is published."""
        checksum = name.endswith(".zip.CHECKSUM")
        stem = name[: -len(".zip.CHECKSUM")] if checksum else name[: -len(".zip")] if name.endswith(".zip") else ""
        prefix = f"{symbol}-{kind}-"
        if not stem.startswith(prefix) or symbol not in self.venue.specs:
            return None
        bounds = period_bounds(period, stem[len(prefix) :])
        if bounds is None:
            return None
        key = FileKey(symbol, kind, period, stem[len(prefix) :], *bounds)
        return (key, checksum) if self.published(self.market.tapes[self.venue.key(symbol)], key) else None

    def published(self, tape: Tape, key: FileKey) -> bool:
        """The period is over by the delay on the simulator's clock, and all of it is in the tape's history."""
        clock = tape.emitted_ms + 1  # every trade before this is public
        return key.start_ms >= tape.first_time and key.end_ms + self.delay_ms <= clock

    # -- serving --------------------------------------------------------------------------------
    async def _serve(self, request: web.Request, period: str, symbol: str, kind: str, name: str) -> web.StreamResponse:
        found = self.key(period, symbol, kind, name)
        if found is None:
            return _not_found(request)
        key, checksum = found
        built = await self.cache.get(key, lambda path: self._build(key, path))
        if checksum:
            return web.Response(text=f"{built.sha256}  {key.zip_name}\n", content_type="text/plain")
        try:
            f = built.path.open("rb")  # held open: the cache may drop the file while it is sent
        except FileNotFoundError:  # dropped between the lookup and here: build it again
            built = await self.cache.get(key, lambda path: self._build(key, path))
            f = built.path.open("rb")
        with f:
            resp = web.StreamResponse(
                headers={"Content-Type": "application/zip", "ETag": f'"{built.sha256}"'},
            )
            resp.content_length = built.size
            await resp.prepare(request)
            if request.method != "HEAD":
                while data := f.read(_SEND_CHUNK):
                    await resp.write(data)
            await resp.write_eof()
        return resp

    async def _build(self, key: FileKey, path: Path) -> str:
        tape = self.market.tapes[self.venue.key(key.symbol)]

        def build() -> str:  # on the "files" history worker: a busy day is millions of rows
            if key.kind == "aggTrades":
                chunks = vision_files.agg_csv(tape, key.start_ms, key.end_ms)
                bound = vision_files.trades_in(tape, key.start_ms, key.end_ms)
            else:
                chunks = vision_files.kline_csv(tape, key.kind, key.start_ms, key.end_ms)
                bound = len(vision_files.kline_opens(key.kind, key.start_ms, key.end_ms))
            return vision_files.write_zip(path, key.csv_name, chunks, period_start_ms=key.start_ms, rows_bound=bound)

        return await self.market.offload.run(build, kind="files")

    def status(self) -> dict[str, object]:
        """For ``/_sim/status``: the publication delay, files built since the start, bytes the cache holds."""
        return {"delay_seconds": self.delay_ms / 1000, "files_built": self.cache.builds, "cache_bytes": self.cache.held}

    def close(self) -> None:
        self.cache.close()


def _not_found(request: web.Request) -> web.Response:
    return web.Response(
        status=404, text=_NOT_FOUND.format(key=request.path.lstrip("/")), content_type="application/xml"
    )
