"""``manage.py seed_instruments`` against the simulator."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from exchangesim.server import Simulator, running_in_thread
from markets.models import Instrument
from markets.selectors import streamed_symbols
from markets.venues import DEFAULT_INSTRUMENTS
from tests.conftest import sim_config
from tradingsite.devstack import free_port


@pytest.fixture
def four_symbols(settings: Any) -> Iterator[Simulator]:
    """A simulator listing the default instruments, as the configured Binance."""
    symbols = tuple(s for s, _, _ in DEFAULT_INSTRUMENTS["binance"])
    with running_in_thread(sim_config(symbols=symbols, explicit_symbols=True)) as sim:
        settings.BINANCE_REST_URL = sim.url
        yield sim


@pytest.mark.django_db
@pytest.mark.usefixtures("four_symbols")
def test_seeds_the_defaults_with_filters_and_is_idempotent() -> None:
    """The four default instruments are stored with the exchange's filters; a second run only updates them."""
    out = io.StringIO()
    call_command("seed_instruments", stdout=out)
    assert "4 instruments created, 0 updated" in out.getvalue()
    assert sorted(Instrument.objects.values_list("symbol", flat=True)) == ["BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT"]
    btc = Instrument.objects.get(symbol="BTCUSDT")
    assert (btc.canonical, btc.base, btc.quote) == ("BTC-USDT", "BTC", "USDT")
    assert btc.tick_size is not None
    assert btc.filters
    call_command("seed_instruments", stdout=out)
    assert "0 instruments created, 4 updated" in out.getvalue()
    assert Instrument.objects.count() == 4


@pytest.mark.django_db
def test_a_symbol_the_exchange_refuses_is_an_error_not_an_outage(sim_thread: Simulator, settings: Any) -> None:
    """An invalid symbol is a CommandError naming it; the listed ones are seeded with their filters."""
    settings.BINANCE_REST_URL = sim_thread.url
    with pytest.raises(CommandError, match=r"^NOPE is not listed on binance$"):
        call_command("seed_instruments", "--symbols", "BTCUSDT,NOPE", stdout=io.StringIO(), stderr=io.StringIO())
    assert list(Instrument.objects.values_list("symbol", flat=True)) == ["BTCUSDT"]
    assert Instrument.objects.get().filters


@pytest.mark.django_db
def test_unlisted_symbols_are_named_and_the_listed_ones_stored(sim_thread: Simulator, settings: Any) -> None:
    settings.BINANCE_REST_URL = sim_thread.url
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^FOOUSDT, BARUSDT are not listed on binance$"):
        call_command("seed_instruments", "--symbols", "BTCUSDT,FOOUSDT,ETHUSDT,BARUSDT", stdout=out)
    assert out.getvalue().strip() == "binance: 2 instruments created, 0 updated"
    assert sorted(Instrument.objects.values_list("symbol", flat=True)) == ["BTCUSDT", "ETHUSDT"]
    with pytest.raises(CommandError, match=r"^FOOUSDT is not listed on binance$"):
        call_command("seed_instruments", "--symbols", "FOOUSDT", stdout=io.StringIO())


@pytest.fixture
def three_defaults(settings: Any) -> Iterator[Simulator]:
    """A Binance that no longer lists one default (SOLUSDT), and the other venues with their defaults."""
    symbols = tuple(s for s, _, _ in DEFAULT_INSTRUMENTS["binance"] if s != "SOLUSDT")
    with running_in_thread(sim_config(symbols=symbols, explicit_symbols=True)) as sim:
        settings.BINANCE_REST_URL = sim.url
        settings.COINBASE_REST_URL = sim.venue_url("coinbase")
        settings.KRAKEN_REST_URL = sim.venue_url("kraken")
        yield sim


@pytest.mark.django_db
@pytest.mark.usefixtures("three_defaults")
def test_all_stores_the_known_defaults_when_one_is_unknown_and_names_it() -> None:
    """``--exchange all`` (what `make run` runs) stores every default the exchanges list, names the one Binance does
    not on stderr, and succeeds."""
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_instruments", "--exchange", "all", stdout=out, stderr=err)
    assert err.getvalue().strip() == "SOLUSDT is not listed on binance (the other defaults of binance are stored)"
    assert "binance: 3 instruments created, 0 updated" in out.getvalue()
    stored = set(Instrument.objects.values_list("exchange", "symbol"))
    assert stored == {(e, s) for e, defaults in DEFAULT_INSTRUMENTS.items() for s, _, _ in defaults} - {
        ("binance", "SOLUSDT")
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("three_defaults")
def test_one_exchange_stores_its_known_defaults_and_fails_naming_the_unknown() -> None:
    with pytest.raises(CommandError, match=r"^SOLUSDT is not listed on binance$"):
        call_command("seed_instruments", stdout=io.StringIO())
    assert sorted(Instrument.objects.values_list("symbol", flat=True)) == ["BNBUSDT", "BTCUSDT", "ETHUSDT"]


@pytest.mark.django_db
@pytest.mark.usefixtures("four_symbols")
def test_seeding_again_leaves_a_removed_instrument_removed() -> None:
    """`make run` seeds at every start: an instrument the operator removed is refreshed, not streamed again."""
    call_command("seed_instruments", stdout=io.StringIO())
    call_command("instruments", "remove", "binance", "SOLUSDT", stdout=io.StringIO())
    call_command("seed_instruments", stdout=io.StringIO())
    assert streamed_symbols(exchange="binance") == ("BNBUSDT", "BTCUSDT", "ETHUSDT")
    assert Instrument.objects.count() == 4


@pytest.mark.django_db
def test_an_exchange_that_cannot_be_reached_stores_nothing(settings: Any) -> None:
    """No instrument is stored without the exchange's own data: an unreachable exchange is an error saying so."""
    settings.BINANCE_REST_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match=f"binance could not be reached at {settings.BINANCE_REST_URL}"):
        call_command("seed_instruments", stdout=io.StringIO(), stderr=io.StringIO())
    assert not Instrument.objects.exists()


@pytest.mark.django_db
def test_all_seeds_the_exchanges_that_answer_and_names_the_one_that_does_not(
    four_symbols: Simulator, settings: Any
) -> None:
    """``--exchange all`` (what `make run` runs): an exchange that cannot be reached is reported on stderr and
    skipped; the others are seeded, and the command succeeds. It fails when no exchange answers."""
    settings.COINBASE_REST_URL = four_symbols.venue_url("coinbase")
    settings.KRAKEN_REST_URL = f"http://127.0.0.1:{free_port()}"
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_instruments", "--exchange", "all", stdout=out, stderr=err)
    assert "kraken could not be reached" in err.getvalue()
    assert set(Instrument.objects.values_list("exchange", flat=True)) == {"binance", "coinbase"}
    settings.BINANCE_REST_URL = settings.COINBASE_REST_URL = settings.KRAKEN_REST_URL
    with pytest.raises(CommandError, match="no exchange could be seeded"):
        call_command("seed_instruments", "--exchange", "all", stdout=io.StringIO(), stderr=io.StringIO())
