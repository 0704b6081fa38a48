"""The metrics of markets/metrics.py count what happened exactly: trades stored (duplicates left out) per symbol
and source, gaps opened once and ended once, REST requests, rate limits and the weight Binance reports (against
the simulator), and live pushes the channel layer refused."""

from __future__ import annotations

import pytest
import requests
from channels_redis.core import RedisChannelLayer
from django.core.management import call_command
from django.core.management.base import CommandError
from prometheus_client import REGISTRY

from exchangesim.server import Simulator
from markets.exchanges.binance import BinanceRest
from markets.exchanges.coinbase.rest import CoinbaseRest
from markets.exchanges.retry import RetryPolicy
from markets.live import Publisher
from markets.services import gap_close, gap_open, ticks_ingest
from tests.markets.test_services import make_ticks
from tradingsite.devstack import free_port

QUICK = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


def value(name: str, **labels: str) -> float:
    """The current value of one sample (0 when it has none yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def stored(symbol: str, source: str = "ws") -> float:
    return value("tradingsite_trades_stored_total", exchange="binance", symbol=symbol, source=source)


@pytest.mark.django_db
def test_trades_stored_count_new_trades_per_symbol_and_source() -> None:
    """A batch of two symbols is counted per symbol; a second batch overlapping it counts only its new trades."""
    before = {s: stored(s) for s in ("BTCUSDT", "ETHUSDT")}
    ticks_ingest(ticks=[*make_ticks(5, symbol="BTCUSDT"), *make_ticks(3, symbol="ETHUSDT")])
    assert stored("BTCUSDT") - before["BTCUSDT"] == 5
    assert stored("ETHUSDT") - before["ETHUSDT"] == 3
    again = ticks_ingest(ticks=[*make_ticks(7, symbol="BTCUSDT"), *make_ticks(3, symbol="ETHUSDT")])
    assert (again.written, again.duplicates) == (2, 8)
    assert stored("BTCUSDT") - before["BTCUSDT"] == 7
    assert stored("ETHUSDT") - before["ETHUSDT"] == 3


@pytest.mark.django_db
def test_a_gap_is_counted_once_when_opened_and_once_when_it_ends() -> None:
    """Opening the same hole again (a restart resumes it) does not count it twice; its end counts as filled or
    unrecoverable."""
    labels = {"exchange": "binance", "symbol": "BNBUSDT"}
    opened, filled, lost = (
        value(f"tradingsite_gaps_{k}_total", **labels) for k in ("opened", "filled", "unrecoverable")
    )
    gap = gap_open(exchange="binance", symbol="BNBUSDT", first_id=10, last_id=19)
    gap = gap_open(exchange="binance", symbol="BNBUSDT", first_id=10, last_id=19)
    assert value("tradingsite_gaps_opened_total", **labels) - opened == 1
    gap_close(gap=gap, recovered=10, unreturned=0)
    other = gap_open(exchange="binance", symbol="BNBUSDT", first_id=30, last_id=39)
    gap_close(gap=other, recovered=8, unreturned=2)
    assert value("tradingsite_gaps_opened_total", **labels) - opened == 2
    assert value("tradingsite_gaps_filled_total", **labels) - filled == 1
    assert value("tradingsite_gaps_unrecoverable_total", **labels) - lost == 1


def test_binance_requests_rate_limits_and_weight(sim_thread: Simulator) -> None:
    """Every request sent (retries included) is counted; a 429 is counted by status; the weight gauge holds the
    last X-MBX-USED-WEIGHT-1M the simulator sent."""
    sent = value("tradingsite_rest_requests_total", exchange="binance")
    limited = value("tradingsite_rest_rate_limited_total", exchange="binance", status="429")
    requests.post(
        f"{sim_thread.url}/_sim/rest/fault",
        json={"status": 429, "count": 1, "retry_after": 0, "path_prefix": "/api/v3/aggTrades"},
        timeout=5,
    ).raise_for_status()
    with BinanceRest(sim_thread.url, policy=QUICK) as adapter:
        adapter.latest_trades("BTCUSDT")
        adapter.latest_trades("BTCUSDT")
        assert adapter.requests == 3
        assert value("tradingsite_rest_requests_total", exchange="binance") - sent == 3
        assert value("tradingsite_rest_rate_limited_total", exchange="binance", status="429") - limited == 1
        assert adapter.used_weight is not None
        assert value("tradingsite_rest_used_weight", exchange="binance") == adapter.used_weight


def test_coinbase_requests_are_counted(sim_thread: Simulator) -> None:
    """The exchanges without a client library of their own count theirs too."""
    sent = value("tradingsite_rest_requests_total", exchange="coinbase")
    with CoinbaseRest(sim_thread.venue_url("coinbase"), policy=QUICK) as adapter:
        adapter.latest_trades("BTC-USD")
        assert value("tradingsite_rest_requests_total", exchange="coinbase") - sent == adapter.requests == 1


async def test_a_live_push_the_channel_layer_refuses_is_counted() -> None:
    """A channel layer whose Redis is gone: each event it refuses is counted, and nothing is raised."""
    layer = RedisChannelLayer(hosts=[{"address": f"redis://127.0.0.1:{free_port()}/0"}])
    failed = value("tradingsite_channel_publish_failures_total", exchange="binance")
    publisher = Publisher(layer, "binance")
    await publisher.trades(make_ticks(3, symbol="BTCUSDT"))  # the trades and the last price: two events
    assert value("tradingsite_channel_publish_failures_total", exchange="binance") - failed == 2


def test_stream_metrics_port_is_checked() -> None:
    """``manage.py stream --metrics-port`` takes a port number or 0; anything else is refused, naming the option."""
    with pytest.raises(CommandError, match="--metrics-port must be a port number \\(0 for none\\), got 70000"):
        call_command("stream", "--metrics-port", "70000")
