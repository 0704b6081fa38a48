"""``manage.py stream``'s plan: which exchanges stream which symbols, from the options, or an error naming the bad
option. No stream is started."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.management.base import CommandError

from live.management.commands.stream import Command


def options(**given: Any) -> dict[str, Any]:
    return {
        "exchange": "binance",
        "symbols": None,
        "stream": "aggTrade",
        "stall_seconds": settings.FEED_STALL_SECONDS,
        "metrics_port": 0,
        **given,
    }


@pytest.mark.parametrize(
    ("exchange", "symbols", "planned"),
    [
        ("binance", "btcusdt, ETHUSDT,btcusdt", ("BTCUSDT", "ETHUSDT")),
        ("coinbase", "BTC-USD", ("BTC-USD",)),
        ("kraken", "XBT/USD", ("XBTUSD",)),  # stored under the pair's altname however it is written
        ("kraken", "BTC/USD,ETH/USD", ("XBTUSD", "ETHUSD")),
    ],
)
def test_symbols_are_planned_as_the_venue_stores_them(exchange: str, symbols: str, planned: tuple[str, ...]) -> None:
    """Given symbols are upper-cased, deduplicated and spelled as the exchange's instruments are stored."""
    assert Command().plan(options(exchange=exchange, symbols=symbols)) == [(exchange, planned)]


def test_without_symbols_every_exchange_follows_its_stored_instruments() -> None:
    """``--exchange all`` runs every known exchange, each on its stored instruments (None: read, and followed,
    when it runs)."""
    plan = Command().plan(options(exchange="all"))
    assert plan == [("binance", None), ("coinbase", None), ("kraken", None)]


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"exchange": "nasdaq"}, "--exchange"),
        ({"exchange": "binance,kraken", "symbols": "BTCUSDT"}, "--symbols"),
        ({"symbols": "BTC USDT"}, "--symbols"),
        ({"exchange": "kraken", "symbols": "NOPE"}, "--symbols"),
        ({"stall_seconds": 0}, "--stall-seconds"),
        ({"metrics_port": 70000}, "--metrics-port"),
        ({"symbols": "BTCUSDT", "no_leases": True}, "--no-leases"),
    ],
)
def test_a_bad_option_is_named(given: dict[str, Any], named: str) -> None:
    """A bad option is a CommandError naming it, before anything starts."""
    with pytest.raises(CommandError, match=named):
        Command().plan(options(**given))
