"""A client of the simulator's data.binance.vision files and of the REST and truth they must agree with."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from typing import Any

import aiohttp

from exchangesim.engine.aggregate import DAY
from exchangesim.server import Simulator

SYMBOL = "BTCUSDT"


def day_of(ms: int) -> str:
    """``YYYY-MM-DD`` of the UTC day holding ``ms``."""
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


def today_ms(sim: Simulator) -> int:
    """Start of the simulator's first UTC day (its history ends there)."""
    return sim.market.started_ms // DAY * DAY


def agg_path(period: str, date: str, symbol: str = SYMBOL) -> str:
    return f"/data/spot/{period}/aggTrades/{symbol}/{symbol}-aggTrades-{date}.zip"


def kline_path(period: str, interval: str, date: str, symbol: str = SYMBOL) -> str:
    return f"/data/spot/{period}/klines/{symbol}/{interval}/{symbol}-{interval}-{date}.zip"


async def fetch_zip(http: aiohttp.ClientSession, sim: Simulator, path: str) -> tuple[bytes, str]:
    """The zip at ``path`` (checked against its CHECKSUM file) and the text of its one CSV."""
    async with http.get(sim.url + path) as r:
        assert r.status == 200, (path, r.status, await r.text())
        assert r.headers["Content-Type"] == "application/zip"
        body = await r.read()
    async with http.get(sim.url + path + ".CHECKSUM") as r:
        assert r.status == 200, (path, r.status)
        checksum = await r.text()
    name = path.rsplit("/", 1)[1]
    assert checksum == f"{hashlib.sha256(body).hexdigest()}  {name}\n"
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert zf.namelist() == [name.removesuffix(".zip") + ".csv"]
        text = zf.read(zf.namelist()[0]).decode()
    return body, text


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def us_to_ms(value: str) -> int:
    """A file's microsecond time as REST's milliseconds (it must be a whole millisecond)."""
    us = int(value)
    assert us % 1000 == 0, value
    return us // 1000


def file_aggs(text: str) -> list[dict[str, Any]]:
    """An aggTrades CSV in ``/api/v3/aggTrades``'s shape (microsecond times back to ms)."""
    out = []
    for r in rows(text):
        assert len(r) == 8, r
        assert r[6] in ("True", "False"), r
        assert r[7] == "True", r
        out.append(
            {"a": int(r[0]), "p": r[1], "q": r[2], "f": int(r[3]), "l": int(r[4]), "T": us_to_ms(r[5]),
             "m": r[6] == "True", "M": True}
        )  # fmt: skip
    return out


def file_klines(text: str) -> list[list[Any]]:
    """A klines CSV in ``/api/v3/klines``'s shape (microsecond times back to ms)."""
    out = []
    for r in rows(text):
        assert len(r) == 12, r
        close_us = int(r[6])
        assert (close_us + 1) % 1000 == 0, r  # the last microsecond of the kline
        out.append([us_to_ms(r[0]), *r[1:6], (close_us + 1) // 1000 - 1, r[7], int(r[8]), *r[9:]])
    return out


async def rest(http: aiohttp.ClientSession, sim: Simulator, path: str, **params: Any) -> Any:
    async with http.get(sim.url + path, params={k: str(v) for k, v in params.items()}) as r:
        assert r.status == 200, (path, params, r.status, await r.text())
        return await r.json()


async def rest_aggs(http: aiohttp.ClientSession, sim: Simulator, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """``/api/v3/aggTrades`` of ``start_ms <= T < end_ms``: the first page by time, then by ``fromId``."""
    page = await rest(http, sim, "/api/v3/aggTrades", symbol=SYMBOL, startTime=start_ms, endTime=end_ms - 1, limit=1000)
    out: list[dict[str, Any]] = []
    while page:
        keep = [a for a in page if a["T"] < end_ms]
        out.extend(keep)
        if len(keep) < len(page) or len(page) < 1000:
            break
        page = await rest(http, sim, "/api/v3/aggTrades", symbol=SYMBOL, fromId=page[-1]["a"] + 1, limit=1000)
    return out


async def rest_klines(
    http: aiohttp.ClientSession, sim: Simulator, interval: str, start_ms: int, end_ms: int
) -> list[list[Any]]:
    """``/api/v3/klines`` opening in ``[start_ms, end_ms)``, paged by 1,000."""
    out: list[list[Any]] = []
    start = start_ms
    while True:
        page = await rest(
            http, sim, "/api/v3/klines", symbol=SYMBOL, interval=interval, startTime=start, endTime=end_ms - 1,
            limit=1000,
        )  # fmt: skip
        out.extend(page)
        if len(page) < 1000:
            return out
        start = page[-1][0] + 1


async def truth_aggs(http: aiohttp.ClientSession, sim: Simulator, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    params = {"symbol": SYMBOL, "kind": "aggTrades", "start_ms": str(start_ms), "end_ms": str(end_ms - 1)}
    async with http.get(sim.url + "/_sim/truth", params=params) as r:
        assert r.status == 200
        return [json.loads(line) for line in (await r.text()).splitlines() if line]


async def status_of(http: aiohttp.ClientSession, sim: Simulator, path: str) -> int:
    async with http.get(sim.url + path) as r:
        await r.read()
        return r.status
