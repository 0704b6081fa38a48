"""Bad requests get Binance's error shape: ``{"code": <negative int>, "msg": str}``, a 4xx status and the
right code, never a 500, a traceback or an HTML page; every response carries X-MBX-USED-WEIGHT-1M;
the weight limit answers 429 (-1003, Retry-After) and then 418 to a client that keeps going."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yarl

from exchangesim.server import Simulator
from tests.conftest import API_KEY, sim_config

SYMBOL_ENDPOINTS = [
    "/api/v3/klines?interval=1m",
    "/api/v3/uiKlines?interval=1m",
    "/api/v3/aggTrades",
    "/api/v3/trades",
    "/api/v3/historicalTrades",
    "/api/v3/depth",
    "/api/v3/ticker/price",
    "/api/v3/exchangeInfo",
]
LIMITED = [
    "/api/v3/klines?symbol=BTCUSDT&interval=1m",
    "/api/v3/uiKlines?symbol=BTCUSDT&interval=1s",
    "/api/v3/aggTrades?symbol=BTCUSDT",
    "/api/v3/trades?symbol=BTCUSDT",
    "/api/v3/historicalTrades?symbol=BTCUSDT",
]
SIGNED = [
    ("GET", "/api/v3/account"),
    ("GET", "/api/v3/openOrders"),
    ("GET", "/api/v3/order"),
    ("POST", "/api/v3/order"),
    ("POST", "/api/v3/order/test"),
    ("DELETE", "/api/v3/order"),
]


def _join(path: str, extra: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{extra}" if extra else path


CASES: list[tuple[str, str, dict[str, str], int, int]] = [
    # (method, path+query, headers, status, code)
    *[("GET", _join(p, "symbol=NOPEUSDT"), {}, 400, -1121) for p in SYMBOL_ENDPOINTS],
    *[("GET", _join(p, "symbol=btcusdt"), {}, 400, -1121) for p in SYMBOL_ENDPOINTS],  # case-sensitive
    *[("GET", p, {}, 400, -1102) for p in SYMBOL_ENDPOINTS[:6]],  # symbol is mandatory there
    *[("GET", _join(p, "symbol="), {}, 400, -1102) for p in SYMBOL_ENDPOINTS[:6]],  # empty = not sent
    ("GET", "/api/v3/klines?symbol=BTCUSDT", {}, 400, -1102),
    *[
        ("GET", f"/api/v3/klines?symbol=BTCUSDT&interval={i}", {}, 400, -1120)
        for i in ("7m", "1H", "1S", "2d", "%ff", "1m%00")
    ],
    ("GET", "/api/v3/uiKlines?symbol=BTCUSDT&interval=1y", {}, 400, -1120),
    *[("GET", _join(p, "limit=0"), {}, 400, -1130) for p in LIMITED],
    *[("GET", _join(p, "limit=5000"), {}, 400, -1130) for p in LIMITED],
    *[("GET", _join(p, "limit=abc"), {}, 400, -1100) for p in LIMITED],
    *[("GET", _join(p, "limit=-1"), {}, 400, -1100) for p in LIMITED],
    *[("GET", _join(p, "limit=1.5"), {}, 400, -1100) for p in LIMITED],
    ("GET", "/api/v3/depth?symbol=BTCUSDT&limit=abc", {}, 400, -1100),
    ("GET", "/api/v3/depth?symbol=BTCUSDT&limit=0", {}, 400, -1130),
    ("GET", "/api/v3/aggTrades?symbol=BTCUSDT&fromId=-1", {}, 400, -1100),
    ("GET", "/api/v3/historicalTrades?symbol=BTCUSDT&fromId=-1", {}, 400, -1100),
    ("GET", "/api/v3/aggTrades?symbol=BTCUSDT&fromId=1e3", {}, 400, -1100),
    ("GET", "/api/v3/aggTrades?symbol=BTCUSDT&startTime=2000&endTime=1000", {}, 400, -1023),
    ("GET", "/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=2000&endTime=1000", {}, 400, -1023),
    ("GET", "/api/v3/aggTrades?symbol=BTCUSDT&fromId=5&startTime=1000", {}, 400, -1128),
    ("GET", "/api/v3/aggTrades?symbol=BTCUSDT&fromId=5&endTime=1000", {}, 400, -1128),
    ("GET", "/api/v3/klines?symbol=BTCUSDT&interval=1m&startTime=yesterday", {}, 400, -1100),
    ("GET", "/api/v3/klines?symbol=BTCUSDT&interval=1m&endTime=" + "9" * 40, {}, 400, -1100),
    *[
        ("GET", f"{p}?symbols={s}", {}, 400, -1100)
        for p in ("/api/v3/exchangeInfo", "/api/v3/ticker/price")
        for s in ("[BTCUSDT", "BTCUSDT", "[]", "%5B1%5D", '{"a":1}', "%5B%22BTCUSDT%22", "null")
    ],
    *[
        ("GET", f"{p}?symbols=%5B%22NOPEUSDT%22%5D", {}, 400, -1121)
        for p in ("/api/v3/exchangeInfo", "/api/v3/ticker/price")
    ],
    *[
        ("GET", f"{p}?symbol=BTCUSDT&symbols=%5B%22BTCUSDT%22%5D", {}, 400, -1128)
        for p in ("/api/v3/exchangeInfo", "/api/v3/ticker/price")
    ],
    ("GET", "/api/v3/nope", {}, 404, -1100),
    ("GET", "/api/v3/", {}, 404, -1100),
    ("GET", "/api", {}, 404, -1100),
    ("GET", "/api/v9/klines?symbol=BTCUSDT&interval=1m", {}, 404, -1100),
    ("POST", "/api/v3/klines?symbol=BTCUSDT&interval=1m", {}, 405, -1000),
    ("DELETE", "/api/v3/ping", {}, 405, -1000),
    ("PUT", "/api/v3/order", {}, 405, -1000),
    ("PATCH", "/api/v3/exchangeInfo", {}, 405, -1000),
    ("GET", "/api/v3/ticker/price?%%%&&==&symbol=%zz", {}, 400, -1121),
    ("GET", "/api/v3/klines?symbol=%ff%fe&interval=1m", {}, 400, -1121),  # non-UTF-8, percent-encoded
    ("GET", "/api/v3/klines?symbol=" + "A" * 6000 + "&interval=1m", {}, 400, -1121),  # long, under 8 KB
    ("GET", "/api/v3/klines?interval=1m&" + "&".join(f"x{i}=%FF" for i in range(900)), {}, 400, -1102),
    # the signed endpoints' public-facing checks, in Binance's order: key format, key, timestamp, signature
    *[(m, p, {}, 401, -2014) for m, p in SIGNED],
    *[(m, p, {"X-MBX-APIKEY": "bad key!"}, 401, -2014) for m, p in SIGNED],
    *[(m, p, {"X-MBX-APIKEY": "unknownKey42"}, 401, -2015) for m, p in SIGNED],
    *[(m, p, {"X-MBX-APIKEY": API_KEY}, 400, -1102) for m, p in SIGNED],  # no timestamp
    *[(m, _join(p, "timestamp=1"), {"X-MBX-APIKEY": API_KEY}, 400, -1102) for m, p in SIGNED],  # no signature
    *[(m, _join(p, "signature=ab12"), {"X-MBX-APIKEY": API_KEY}, 400, -1102) for m, p in SIGNED],
    ("GET", "/api/v3/account?timestamp=1&signature=%ff%fe", {"X-MBX-APIKEY": API_KEY}, 400, -1022),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_sim() -> AsyncIterator[Simulator]:
    """One simulator for the whole walk (weight limit high enough never to interfere)."""
    async with Simulator(sim_config(weight_limit=10**9)) as s:
        yield s


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _check_error(status: int, headers: Any, text: str) -> dict[str, Any]:
    """The body is Binance's error object; no traceback or HTML leaks; the weight header is present."""
    assert "Traceback" not in text
    assert "<html" not in text.lower()
    assert headers.get("Content-Type", "").startswith("application/json"), (status, text[:200])
    body = json.loads(text)
    assert set(body) == {"code", "msg"}, body
    assert isinstance(body["code"], int)
    assert body["code"] < 0
    assert isinstance(body["msg"], str)
    assert body["msg"]
    assert headers.get("X-MBX-USED-WEIGHT-1M", "").isdigit(), dict(headers)
    return body


pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    CASES,
    ids=[f"{c[0]} {c[1][:70]} {sorted(c[2].values())}" for c in CASES],
)
async def test_bad_request_gets_binance_error(
    shared_sim: Simulator,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    code: int,
) -> None:
    """Each bad request is answered with the documented status and code in Binance's error shape."""
    async with http.request(method, shared_sim.url + path, headers=headers) as r:
        text = await r.text(errors="replace")
        assert r.status == status, text[:300]
        body = _check_error(r.status, r.headers, text)
    assert body["code"] == code, body


async def test_malformed_body_on_signed_post_is_a_client_error(
    shared_sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A form body that is not UTF-8 or not key=value pairs is a 4xx Binance error, not a crash."""
    for body in (b"\xff\xfe\xfd=1", b"%%%&&&===", b"timestamp=\xff", b"\x00" * 64):
        async with http.post(
            f"{shared_sim.url}/api/v3/order",
            data=body,
            headers={"X-MBX-APIKEY": API_KEY, "Content-Type": "application/x-www-form-urlencoded"},
        ) as r:
            text = await r.text(errors="replace")
            assert 400 <= r.status < 500, (body, r.status, text)
            _check_error(r.status, r.headers, text)


async def test_non_ascii_signature_is_rejected_not_crashed(shared_sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A signature with non-ASCII characters (here in a form body) is an invalid signature (-1022)."""
    async with http.post(
        f"{shared_sim.url}/api/v3/order/test",
        data="timestamp=1&signature=\u00e9\u00e8".encode(),
        headers={"X-MBX-APIKEY": API_KEY, "Content-Type": "application/x-www-form-urlencoded"},
    ) as r:
        text = await r.text(errors="replace")
        assert r.status == 400, text
        assert _check_error(r.status, r.headers, text)["code"] == -1022


async def _raw(sim: Simulator, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(sim.config.host, sim.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET /api/v3/klines?symbol=\xff\xfe&interval=1m HTTP/1.1",
        b"GET /api/v3/\xff\xfe HTTP/1.1",
        b"GET /api/v3/klines?symbol=BTCUSDT&interval=1m&" + b"x=1&" * 20000 + b" HTTP/1.1",  # 80 KB: past the parser
    ],
)
async def test_unparseable_request_line_is_a_plain_400(shared_sim: Simulator, request_line: bytes) -> None:
    """Raw non-UTF-8 bytes in the request line, or one longer than the HTTP parser takes, are refused with
    400 by the HTTP layer before any handler runs: still no 500, traceback or HTML (the body is the
    parser's one-line reason, not Binance JSON: see the report on server.py)."""
    raw = await _raw(shared_sim, request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert 400 <= status < 500, head
    assert b"Traceback" not in body
    assert b"<html" not in body.lower()
    # and the server is still serving
    async with aiohttp.ClientSession() as s, s.get(f"{shared_sim.url}/api/v3/ping") as r:
        assert r.status == 200


async def test_every_response_carries_used_weight(shared_sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Successes and errors alike carry X-MBX-USED-WEIGHT-1M, and it grows by the endpoint's weight."""
    async with http.get(f"{shared_sim.url}/api/v3/ping") as r:
        before = int(r.headers["X-MBX-USED-WEIGHT-1M"])
    for path, weight in (
        ("/api/v3/time", 1),
        ("/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1", 2),
        ("/api/v3/aggTrades?symbol=BTCUSDT&limit=1", 4),
        ("/api/v3/exchangeInfo", 20),
        ("/api/v3/trades?symbol=BTCUSDT&limit=1", 25),
        ("/api/v3/depth?symbol=BTCUSDT", 5),
        ("/api/v3/ticker/price", 4),
        ("/api/v3/ticker/price?symbol=BTCUSDT", 2),
    ):
        async with http.get(shared_sim.url + path) as r:
            assert r.status == 200
            used = int(r.headers["X-MBX-USED-WEIGHT-1M"])
        if used < before:  # a new minute started between the two requests
            before = used - weight
        assert used - before == weight, path
        before = used


async def test_weight_limit_gives_429_then_418() -> None:
    """Past the weight limit: 429, code -1003, Retry-After; a client that keeps going is banned (418).

    The limit is set live through the control API. A minute boundary resets the count, so the test
    keeps requesting (bounded) rather than counting exact request numbers.
    """
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as s:
        async with s.post(f"{sim.url}/_sim/config", json={"weight_limit": 50}) as r:
            assert (await r.json())["weight_limit"] == 50
        statuses: list[int] = []
        for _ in range(300):
            async with s.get(f"{sim.url}/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1") as r:
                statuses.append(r.status)
                if r.status == 200:
                    assert int(r.headers["X-MBX-USED-WEIGHT-1M"]) <= 50
                    continue
                body = _check_error(r.status, r.headers, await r.text())
                assert body["code"] == -1003
                retry = int(r.headers["Retry-After"])
                if r.status == 429:
                    assert 0 < retry <= 60
                    assert "current limit is 50 request weight per 1 MINUTE" in body["msg"]
                    continue
                assert r.status == 418, body
                assert retry > 60  # banned for the configured ban (120 s), longer than the window
                assert "IP banned until" in body["msg"]
                break
        assert statuses[-1] == 418, statuses
        assert 429 in statuses
        assert statuses.index(429) < statuses.index(418)
        async with s.get(f"{sim.url}/api/v3/ping") as r:  # the ban covers every endpoint
            assert r.status == 418


async def test_weight_limit_from_config() -> None:
    """``sim_config(weight_limit=...)`` sets the limit exchangeInfo reports and the 429 point."""
    async with Simulator(sim_config(weight_limit=30)) as sim, aiohttp.ClientSession() as s:
        async with s.get(f"{sim.url}/api/v3/exchangeInfo?symbol=BTCUSDT") as r:
            info = await r.json()
        assert info["rateLimits"][0]["limit"] == 30
        got_429 = False
        for _ in range(100):
            async with s.get(f"{sim.url}/api/v3/exchangeInfo?symbol=BTCUSDT") as r:
                if r.status == 429:
                    got_429 = True
                    assert _check_error(r.status, r.headers, await r.text())["code"] == -1003
                    assert "Retry-After" in r.headers
                    break
        assert got_429


FUZZ_ENDPOINTS = [
    "klines",
    "uiKlines",
    "aggTrades",
    "trades",
    "historicalTrades",
    "depth",
    "ticker/price",
    "exchangeInfo",
]
FUZZ_PARAMS = ["limit", "fromId", "startTime", "endTime", "interval", "symbols"]
FUZZ_VALUES = [
    "%C2%B2",
    "%D9%A3",
    "99999999999999999999",
    "999999999999999999999",
    "0",
    "-0",
    "1e3",
    "%205",
    "%00",
    "%5B%5D",
    "%5B1%5D",
    "253402300800000",
    "18446744073709551616",
]


@pytest.mark.parametrize("endpoint", FUZZ_ENDPOINTS)
async def test_odd_values_never_give_a_500(shared_sim: Simulator, http: aiohttp.ClientSession, endpoint: str) -> None:
    """Unicode digits, far-future times and overflowing numbers in any parameter of any public endpoint give
    an answer (a result or Binance's error shape), never a 500."""
    for interval in ("1m", "1M", "1w"):
        for param in FUZZ_PARAMS:
            for value in FUZZ_VALUES:
                query = f"symbol=BTCUSDT&interval={interval}&{param}={value}"
                async with http.get(yarl.URL(f"{shared_sim.url}/api/v3/{endpoint}?{query}", encoded=True)) as r:
                    text = await r.text()
                    assert r.status < 500, (endpoint, query, text)
                    if r.status >= 400:
                        _check_error(r.status, r.headers, text)
