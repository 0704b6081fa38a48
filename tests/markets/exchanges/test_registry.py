"""The exchange registry: one row per exchange (adapters, settings, defaults, capabilities, symbol rules), the
facade ``markets.venues`` that builds adapters from settings, and the domain records of ``markets.types``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from markets import types, venues
from markets.exchanges import base
from markets.exchanges.registry import NAMES, VENUES, venue
from markets.exchanges.symbols import as_stored, canonical

ROOT = Path(__file__).resolve().parents[3]
BRANCH_ON_NAME = re.compile(r"""exchange\s*[!=]=\s*["']""")


def test_the_exchanges_are_the_registrys_rows_in_order() -> None:
    """Binance first, then Coinbase and Kraken; the facade's names are the registry's."""
    assert NAMES == ("binance", "coinbase", "kraken") == venues.KNOWN_EXCHANGES
    assert all(VENUES[name].name == name for name in NAMES)
    assert {name: VENUES[name].default_instruments for name in NAMES} == venues.DEFAULT_INSTRUMENTS


@pytest.mark.parametrize("name", NAMES)
def test_each_row_names_settings_that_exist(name: str, settings: Any) -> None:
    """Every URL and key setting a row names is a setting of the project."""
    v = venue(name)
    for setting in (v.rest_url_setting, v.ws_url_setting, *v.credential_settings.values()):
        assert hasattr(settings, setting), setting


@pytest.mark.parametrize("name", NAMES)
def test_adapters_are_built_on_the_configured_urls(name: str, settings: Any) -> None:
    """The REST adapter answers to the exchange's name with its REST Protocol; the stream adapter's URL is on the
    configured WebSocket base; ``rest_url`` is the configured REST base."""
    v = venue(name)
    setattr(settings, v.rest_url_setting, "http://127.0.0.1:9/rest")
    setattr(settings, v.ws_url_setting, "ws://127.0.0.1:9/ws")
    adapter = venues.rest_adapter(name)
    try:
        assert adapter.name == name
        assert adapter.capabilities.max_trades > 0
    finally:
        adapter.close()
    symbols = [s for s, _, _ in v.default_instruments]
    feed = venues.stream_adapter(name, symbols)
    assert feed.name == name
    assert feed.url().startswith("ws://127.0.0.1:9/ws")
    assert venues.rest_url(name) == "http://127.0.0.1:9/rest"


@pytest.mark.parametrize("name", ["coinbase", "kraken"])
def test_venues_with_one_trade_stream_refuse_another_kind(name: str) -> None:
    """``--stream trade`` is Binance's: a venue with one trade stream says so."""
    with pytest.raises(ValueError, match=f"--stream trade is Binance's; {name} has one trade stream"):
        venues.stream_adapter(name, ["X"], kind="trade")


@pytest.mark.parametrize(
    "call", [lambda: venues.rest_adapter("ftx"), lambda: venues.stream_adapter("ftx", ["X"]), lambda: venue("ftx")]
)
def test_an_unknown_exchange_is_refused_naming_the_known_ones(call: Any) -> None:
    """A name outside the table is a ValueError listing the table."""
    with pytest.raises(ValueError, match="unknown exchange 'ftx'; known: binance, coinbase, kraken"):
        call()


@pytest.mark.parametrize("name", NAMES)
def test_default_instruments_read_back_as_their_pair(name: str) -> None:
    """Each default (symbol, base, quote) is the venue's stored spelling of BASE-QUOTE."""
    for symbol, base_asset, quote in venue(name).default_instruments:
        assert canonical(name, symbol) == f"{base_asset}-{quote}"
        assert as_stored(name, symbol) == symbol


def test_only_binance_takes_signed_orders_and_only_with_both_keys(settings: Any) -> None:
    """Signed orders go through our Binance executor: Binance with both keys set; never another venue or an
    unknown name."""
    assert [n for n in NAMES if venue(n).signed_orders] == ["binance"]
    settings.BINANCE_API_KEY, settings.BINANCE_API_SECRET = "k", ""
    assert not venues.signed_orders_ready("binance")
    settings.BINANCE_API_SECRET = "s"
    assert venues.signed_orders_ready("binance")
    assert venues.credentials("binance") == {"api_key": "k", "api_secret": "s"}
    assert not venues.signed_orders_ready("coinbase")
    assert not venues.signed_orders_ready("nowhere")
    assert venues.credentials("kraken") == {}


def test_the_exchange_protocol_re_exports_the_domain_records() -> None:
    """``markets.exchanges.base`` hands out the very classes of ``markets.types``."""
    for name in ("TradeTick", "CandleBar", "InstrumentInfo", "Source"):
        assert getattr(base, name) is getattr(types, name)


def test_records_registry_and_symbols_import_no_django() -> None:
    """The domain records, the registry and the symbol rules are pure: importing them loads no Django."""
    code = (
        "import sys; import markets.types, markets.exchanges.registry, markets.exchanges.symbols; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_branch_on_an_exchange_name_outside_the_registry() -> None:
    """Differences between exchanges are rows of the registry, not ``exchange == "..."`` branches in markets."""
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "markets").rglob("*.py"))
        if path.name != "registry.py" and "migrations" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if BRANCH_ON_NAME.search(line)
    ]
    assert found == []
