"""BinanceRest against the real simulator over HTTP: market data, paging, weight, and every failure the control
API can inject (429, 5xx, slow answers), plus a closed port. No mock of the exchange anywhere."""

from __future__ import annotations

import http.server
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from exchangesim.server import Simulator, running_in_thread
from markets.exchanges.base import RestAdapter, Source
from markets.exchanges.binance import BinanceRest
from markets.exchanges.errors import BadRequest, ExchangeUnavailable, RateLimited
from markets.exchanges.retry import RetryPolicy
from markets.exchanges.weight import WeightBudget
from tests.conftest import sim_config

QUICK = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


def _fault(sim: Simulator, **body: Any) -> None:
    r = requests.post(f"{sim.url}/_sim/rest/fault", json=body, timeout=5)
    assert r.status_code == 200, r.text


def _status(sim: Simulator) -> dict[str, Any]:
    return requests.get(f"{sim.url}/_sim/status", timeout=5).json()


def _minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


class Waits(list[tuple[float, str]]):
    """Collects on_wait(seconds, reason) calls."""

    def __call__(self, seconds: float, reason: str) -> None:
        self.append((seconds, reason))


@pytest.fixture
def adapter(sim_thread: Simulator) -> BinanceRest:
    return BinanceRest(sim_thread.url, policy=QUICK)


def test_is_a_rest_adapter(adapter: BinanceRest) -> None:
    """BinanceRest declares Binance's capabilities as data and fits the RestAdapter protocol."""
    typed: RestAdapter = adapter
    assert typed.name == "binance"
    caps = typed.capabilities
    assert (caps.ids_contiguous, caps.max_klines, caps.max_trades, caps.klines_omit_quiet) == (True, 1000, 1000, False)
    assert caps.trades_time_window is None  # lifted by Binance on 2022-12-05
    assert (typed.requests, typed.used_weight) == (0, None)


def test_instruments_with_filters(adapter: BinanceRest) -> None:
    """exchangeInfo gives canonical names, tick/step/min-notional as Decimal, the raw filters, the weight limit."""
    every = {i.symbol: i for i in adapter.instruments()}
    assert set(every) == {"BTCUSDT", "ETHUSDT"}
    btc = every["BTCUSDT"]
    assert (btc.exchange, btc.canonical, btc.base, btc.quote) == ("binance", "BTC-USDT", "BTC", "USDT")
    assert (btc.tick_size, btc.step_size, btc.min_notional) == (Decimal("0.01"), Decimal("0.00001"), Decimal(5))
    assert {f["filterType"] for f in btc.filters} >= {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"}
    assert adapter.weight_limit == 6000
    [eth] = adapter.instruments(["ETHUSDT"])
    assert eth.canonical == "ETH-USDT"
    assert adapter.instruments([]) == []
    assert adapter.requests == 2
    assert adapter.used_weight == 40  # exchangeInfo weighs 20


def test_instruments_learn_the_weight_limit() -> None:
    """The REQUEST_WEIGHT limit comes from exchangeInfo's rateLimits when instruments() ran."""
    with running_in_thread(sim_config(weight_limit=3000)) as sim:
        adapter = BinanceRest(sim.url)
        assert adapter.weight_limit == 6000
        adapter.instruments(["BTCUSDT"])
        assert adapter.weight_limit == 3000


def test_klines_two_hours(adapter: BinanceRest, sim_thread: Simulator) -> None:
    """Two hours of 1m klines are 120 contiguous closed candles with Decimal prices, all inside [start, end)."""
    end = _minute(datetime.now(UTC)) - timedelta(hours=1)
    start = end - timedelta(hours=2)
    bars = adapter.klines("BTCUSDT", "1m", start, end)
    assert len(bars) == 120
    assert [b.open_time for b in bars] == [start + timedelta(minutes=i) for i in range(120)]
    for b in bars:
        assert (b.exchange, b.symbol, b.interval, b.source) == ("binance", "BTCUSDT", "1m", "exchange")
        assert b.closed
        assert not b.synthetic
        assert all(isinstance(v, Decimal) for v in (b.open, b.high, b.low, b.close, b.volume, b.quote_volume))
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.close_time == b.open_time + timedelta(seconds=59.999)
        assert b.trades > 0
        assert b.taker_buy_volume <= b.volume
    assert _status(sim_thread)["venues"]["binance"]["requests"]["/api/v3/klines"] == 1 == adapter.requests


def test_klines_half_open_range_and_the_open_candle(adapter: BinanceRest, sim_thread: Simulator) -> None:
    """start is included, end excluded, an unaligned start skips the candle it falls in, and the candle of the
    current minute comes back not closed."""
    # The exchange's current minute: the engine makes a minute's candle public at its first tick in it, which
    # lags the clock by up to a tick (the clock's minute may have no candle yet in its first milliseconds).
    emitted = sim_thread.market.tapes["ETHUSDT"].emitted_ms
    now = _minute(datetime.fromtimestamp(emitted / 1000, UTC))
    asked = _minute(datetime.now(UTC))
    bars = adapter.klines("ETHUSDT", "1m", now - timedelta(minutes=4, seconds=30), now + timedelta(minutes=1))
    assert [b.open_time for b in bars] == [now - timedelta(minutes=i) for i in (4, 3, 2, 1, 0)]
    assert all(b.closed for b in bars[:-1])
    if _minute(datetime.now(UTC)) == now:  # still the same minute: its candle was open when it came
        assert not bars[-1].closed
    elif asked > now:  # the minute had ended before the request
        assert bars[-1].closed
    hourly = adapter.klines("ETHUSDT", "1h", now - timedelta(hours=5), now - timedelta(hours=1))
    assert len(hourly) in (4, 5)
    assert all(b.interval == "1h" for b in hourly)
    assert adapter.klines("ETHUSDT", "1m", now, now) == []


def test_paging_by_id_gives_contiguous_ids_matching_the_truth(adapter: BinanceRest, sim_thread: Simulator) -> None:
    """Pages by id (fromId) join with no hole and no overlap, and equal what the simulator emitted."""
    [latest] = adapter.latest_trades("BTCUSDT")
    first = latest.trade_id - 1800
    page1 = adapter.trades_from_id("BTCUSDT", first)
    page2 = adapter.trades_from_id("BTCUSDT", page1[-1].trade_id + 1, limit=500)
    ids = [t.trade_id for t in page1 + page2]
    assert ids == list(range(first, first + 1500))
    truth = requests.get(
        f"{sim_thread.url}/_sim/truth",
        timeout=5,
        params={"symbol": "BTCUSDT", "kind": "aggTrades", "from_id": first, "to_id": first + 1499},
    ).text.splitlines()
    assert len(truth) == 1500
    for tick, line in zip(page1 + page2, truth, strict=True):
        row = requests.models.complexjson.loads(line)
        assert (tick.trade_id, tick.price, tick.qty) == (row["a"], Decimal(row["p"]), Decimal(row["q"]))
        assert (tick.first_trade_id, tick.last_trade_id) == (row["f"], row["l"])
        assert tick.taker_side == ("sell" if row["m"] else "buy")
        assert tick.source is Source.REST
        assert tick.received_at.tzinfo is UTC


def test_trades_by_time(adapter: BinanceRest) -> None:
    """Trades of [start, end) come oldest first, contiguous, all inside the window; windows wider than an
    hour are accepted, as on Binance since 2022-12-05 (oldest first, up to the limit)."""
    start = _minute(datetime.now(UTC)) - timedelta(hours=2)
    ticks = adapter.trades_by_time("ETHUSDT", start, start + timedelta(seconds=10))
    assert ticks, "the synthetic market trades every second"
    assert all(start <= t.ts < start + timedelta(seconds=10) for t in ticks)
    assert [t.trade_id for t in ticks] == list(range(ticks[0].trade_id, ticks[0].trade_id + len(ticks)))
    before = adapter.trades_by_time("ETHUSDT", start - timedelta(seconds=10), start)
    assert before[-1].trade_id == ticks[0].trade_id - 1, "the windows meet with nothing lost"
    wide = adapter.trades_by_time("ETHUSDT", start - timedelta(hours=3), start + timedelta(seconds=10), limit=5)
    assert len(wide) == 5
    assert wide[0].ts >= start - timedelta(hours=3)


def test_used_weight_is_read_from_every_answer(adapter: BinanceRest) -> None:
    """used_weight follows X-MBX-USED-WEIGHT-1M, error answers included."""
    adapter.latest_trades("BTCUSDT")
    first = adapter.used_weight
    assert first is not None
    assert first >= 4
    adapter.latest_trades("BTCUSDT")
    assert adapter.used_weight in (first + 4, 4)  # aggTrades weighs 4 (or a new minute began)
    with pytest.raises(BadRequest):
        adapter.latest_trades("NOPEUSDT")
    assert adapter.used_weight in (first + 8, 8, 4)


def test_429_is_waited_out_and_never_provokes_a_ban(sim_thread: Simulator) -> None:
    """Three 429s with Retry-After 2: each is waited out (>= 2 s apiece), the call then succeeds, and the
    simulator saw no request inside a Retry-After, so it never answered 418."""
    _fault(sim_thread, status=429, count=3, retry_after=2, path_prefix="/api/v3/aggTrades")
    waits = Waits()
    adapter = BinanceRest(sim_thread.url, on_wait=waits)
    began = time.monotonic()
    ticks = adapter.latest_trades("BTCUSDT", limit=5)
    took = time.monotonic() - began
    assert len(ticks) == 5
    assert took >= 3 * 2
    assert waits == [(pytest.approx(2.1), "rate limited (429)")] * 3
    assert adapter.requests == 4
    status = _status(sim_thread)
    injected = status["faults_injected"]
    assert injected["rest_429"] == 3
    assert "backoff_violation" not in injected
    assert "ban_418" not in injected
    assert "rest_418" not in injected
    assert status["venues"]["binance"]["requests"]["/api/v3/aggTrades"] == 4


def test_retry_after_longer_than_we_wait_is_raised(sim_thread: Simulator) -> None:
    """A 418 asking for 300 s (beyond max_wait) is raised at once, saying how long the exchange asked for."""
    _fault(sim_thread, status=418, count=1, retry_after=300, path_prefix="/api/v3/klines")
    adapter = BinanceRest(sim_thread.url, policy=QUICK)
    now = _minute(datetime.now(UTC))
    with pytest.raises(RateLimited) as info:
        adapter.klines("BTCUSDT", "1m", now - timedelta(minutes=5), now)
    err = info.value
    assert (err.status, err.retry_after, err.banned) == (418, 300, True)
    assert "asked to wait 300 s" in str(err)
    assert adapter.requests == 1


def test_500_twice_then_success(sim_thread: Simulator) -> None:
    """Two 500s are retried after short back-offs; the third try succeeds."""
    _fault(sim_thread, status=500, count=2, path_prefix="/api/v3/exchangeInfo")
    waits = Waits()
    adapter = BinanceRest(sim_thread.url, policy=QUICK, on_wait=waits)
    assert len(adapter.instruments()) == 2
    assert adapter.requests == 3
    assert [r for _, r in waits] == [
        f"unavailable: HTTP 500 from exchangeInfo: An unknown error occurred while "
        f"processing the request. (code -1000) (attempt {n} of 3)"
        for n in (1, 2)
    ]


def test_503_past_every_attempt_is_exchange_unavailable(sim_thread: Simulator) -> None:
    """503 on every try: ExchangeUnavailable naming the attempts, the last cause and the URL."""
    _fault(sim_thread, status=503, count=10, path_prefix="/api/v3/aggTrades")
    adapter = BinanceRest(sim_thread.url, policy=QUICK)
    with pytest.raises(ExchangeUnavailable) as info:
        adapter.trades_from_id("BTCUSDT", 1)
    err = info.value
    assert err.attempts == 3
    assert str(err).startswith(f"binance: unavailable at {sim_thread.url} after 3 attempts; last error: HTTP 503")
    assert "overloaded" in str(err)
    assert _status(sim_thread)["venues"]["binance"]["requests"]["/api/v3/aggTrades"] == 3 == adapter.requests


def test_slow_answer_is_a_timeout_and_retried(sim_thread: Simulator) -> None:
    """An answer slower than the timeout is given up on and the request retried."""
    _fault(sim_thread, delay_ms=2000, count=1, path_prefix="/api/v3/aggTrades")
    waits = Waits()
    adapter = BinanceRest(sim_thread.url, policy=QUICK, timeout=0.5, on_wait=waits)
    began = time.monotonic()
    assert len(adapter.latest_trades("ETHUSDT", limit=3)) == 3
    assert 0.5 <= time.monotonic() - began < 1.9
    assert adapter.requests == 2
    assert waits[0][1] == "unavailable: no answer from aggTrades within 0.5 s (attempt 1 of 3)"


def test_unknown_symbol_is_a_bad_request_naming_it(adapter: BinanceRest) -> None:
    """Binance's -1121 is not retried and the error names the symbol."""
    now = _minute(datetime.now(UTC))
    with pytest.raises(BadRequest) as info:
        adapter.klines("NOPEUSDT", "1m", now - timedelta(minutes=5), now)
    err = info.value
    assert (err.status, err.code, err.msg) == (400, -1121, "Invalid symbol.")
    assert str(err) == "binance: unknown symbol 'NOPEUSDT' (klines answered code -1121: Invalid symbol.)"
    assert adapter.requests == 1
    with pytest.raises(BadRequest, match="NOPEUSDT"):
        adapter.instruments(["BTCUSDT", "NOPEUSDT"])


def test_closed_port_is_exchange_unavailable() -> None:
    """Nothing listening: connection refused on every try, then ExchangeUnavailable naming URL and attempts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    adapter = BinanceRest(f"http://127.0.0.1:{port}/", policy=QUICK)
    with pytest.raises(ExchangeUnavailable) as info:
        adapter.latest_trades("BTCUSDT")
    assert str(info.value) == (
        f"binance: unavailable at http://127.0.0.1:{port} after 3 attempts; last error: aggTrades: connection refused"
    )
    assert adapter.requests == 3
    assert adapter.used_weight is None


def test_weight_governor_waits_for_the_next_minute_instead_of_a_429() -> None:
    """Near the weight limit the adapter waits for the minute boundary rather than provoke a 429.

    The fake sleep stands in for the minute passing: it moves the budget's clock on and clears the simulator's
    weight counters.
    """
    with running_in_thread(sim_config(weight_limit=100)) as sim:
        slept: list[float] = []
        now = [time.time()]

        def minute_passes(seconds: float) -> None:
            slept.append(seconds)
            now[0] += seconds
            requests.post(f"{sim.url}/_sim/reset", timeout=5)

        waits = Waits()
        budget = WeightBudget("binance", 6000, 60, clock=lambda: now[0])
        adapter = BinanceRest(sim.url, sleep=minute_passes, on_wait=waits, budget=budget)
        adapter.instruments(["BTCUSDT"])  # learns the limit of 100 (and weighs 20)
        for _ in range(40):  # 160 more weight: more than the limit
            adapter.latest_trades("BTCUSDT")
        assert slept, "the governor never waited"
        assert all(0 < s <= 60.25 for s in slept)
        assert all(re.fullmatch(r"request weight (9\d) of 100 used this window \(60 s\)", r) for _, r in waits)
        assert adapter.requests == 41
        assert "weight_429" not in _status(sim)["faults_injected"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a, now: a.klines("BTCUSDT", "2m", now - timedelta(hours=1), now), "unsupported interval '2m'"),
        (lambda a, now: a.klines("BTCUSDT", "1m", now.replace(tzinfo=None), now), "start must be a timezone-aware"),
        (lambda a, now: a.klines("BTCUSDT", "1m", now, now - timedelta(minutes=1)), "is before start"),
        (lambda a, now: a.trades_from_id("BTCUSDT", -1), "from_id must be a non-negative integer"),
        (lambda a, now: a.latest_trades("BTCUSDT", limit=0), "limit must be a positive integer"),
        (lambda a, now: a.instruments("BTCUSDT"), "symbols must be a list"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(adapter: BinanceRest, call: Any, message: str) -> None:
    """Our own mistakes are ValueErrors, raised before anything is sent."""
    with pytest.raises(ValueError, match=message):
        call(adapter, _minute(datetime.now(UTC)))
    assert adapter.requests == 0


@pytest.mark.parametrize("status", [200, 502])
def test_a_non_json_answer_is_exchange_unavailable(status: int) -> None:
    """A proxy's HTML page instead of Binance's JSON (as a 200 or a 502) is retried, then ExchangeUnavailable.

    The exchange simulator always answers JSON, so a bare HTTP server plays the misbehaving proxy.
    """

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>Bad Gateway</body></html>"
            self.send_response(status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy) as server:
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            adapter = BinanceRest(f"http://127.0.0.1:{server.server_address[1]}", policy=QUICK)
            with pytest.raises(ExchangeUnavailable) as info:
                adapter.latest_trades("BTCUSDT")
        finally:
            server.shutdown()
    assert info.value.attempts == 3
    assert adapter.requests == 3
    assert ("invalid JSON from aggTrades" if status == 200 else "HTTP 502 from aggTrades") in str(info.value)
