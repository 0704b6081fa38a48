"""Adding an instrument in the admin, as staff through Django's test client, against the simulator's three venues:
it is stored only for a known exchange, a symbol that exchange lists, and with the exchange's own data; anything
else is refused on the form with a message naming the bad input, and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from exchangesim.server import Simulator, running_in_thread
from markets.models import Instrument
from tests.conftest import sim_config
from tradingsite.devstack import free_port

ADD = "/admin/markets/instrument/add/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def venues(settings: Any) -> Iterator[Simulator]:
    """The simulator as Binance, Coinbase and Kraken."""
    with running_in_thread(sim_config(rate=1.0, history_days=0.05)) as sim:
        settings.BINANCE_REST_URL = sim.url
        settings.COINBASE_REST_URL = sim.venue_url("coinbase")
        settings.KRAKEN_REST_URL = sim.venue_url("kraken")
        yield sim


def form_errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "the form is shown again with its errors"
    return {k: list(v) for k, v in response.context["adminform"].form.errors.items()}


@pytest.mark.usefixtures("venues")
@pytest.mark.parametrize(
    ("exchange", "typed", "symbol", "canonical"),
    [
        ("binance", "btcusdt", "BTCUSDT", "BTC-USDT"),
        ("coinbase", "BTC-USD", "BTC-USD", "BTC-USD"),
        ("kraken", "XBTUSD", "XBTUSD", "BTC-USD"),
    ],
)
def test_staff_add_a_listed_instrument_with_the_exchanges_data(
    admin_client: Client, exchange: str, typed: str, symbol: str, canonical: str
) -> None:
    response = admin_client.post(ADD, {"exchange": exchange, "symbol": typed})
    assert response.status_code == 302, form_errors(response)
    stored = Instrument.objects.get(exchange=exchange, symbol=symbol)
    assert stored.canonical == canonical
    assert stored.filters, "the exchange's own filters are stored"
    assert stored.status


@pytest.mark.usefixtures("venues")
@pytest.mark.parametrize(
    ("exchange", "symbol", "field", "message"),
    [
        ("nasdaq", "AAPL", "exchange", "nasdaq is not a known exchange; known: binance, coinbase, kraken"),
        ("binance", "FOOUSDT", "symbol", "FOOUSDT is not listed on binance"),
        ("coinbase", "FOO-USD", "symbol", "FOO-USD is not listed on coinbase"),
        ("kraken", "FOOUSD", "symbol", "FOOUSD is not listed on kraken"),
        ("binance", "", "symbol", "This field is required."),
    ],
)
def test_an_unknown_exchange_or_unlisted_symbol_is_refused_by_name(
    admin_client: Client, exchange: str, symbol: str, field: str, message: str
) -> None:
    errors = form_errors(admin_client.post(ADD, {"exchange": exchange, "symbol": symbol}))
    assert errors == {field: [message]}
    assert not Instrument.objects.exists()


def test_an_exchange_that_cannot_be_reached_stores_nothing(admin_client: Client, settings: Any) -> None:
    settings.BINANCE_REST_URL = f"http://127.0.0.1:{free_port()}"
    errors = form_errors(admin_client.post(ADD, {"exchange": "binance", "symbol": "BTCUSDT"}))
    (message,) = errors["__all__"]
    assert message.startswith(f"binance could not be reached at {settings.BINANCE_REST_URL}")
    assert "nothing was stored" in message
    assert not Instrument.objects.exists()


@pytest.mark.usefixtures("venues")
def test_a_stored_instrument_is_not_added_twice_and_keeps_its_exchange_and_symbol(admin_client: Client) -> None:
    assert admin_client.post(ADD, {"exchange": "binance", "symbol": "ETHUSDT"}).status_code == 302
    errors = form_errors(admin_client.post(ADD, {"exchange": "binance", "symbol": "ETHUSDT"}))
    assert "already exists" in " ".join(m for ms in errors.values() for m in ms)
    stored = Instrument.objects.get()
    change = admin_client.get(f"/admin/markets/instrument/{stored.pk}/change/")
    assert change.status_code == 200
    assert set(change.context["adminform"].form.fields).isdisjoint({"exchange", "symbol"})


def test_only_staff_reach_the_form(client: Client) -> None:
    assert client.get(ADD).status_code == 302  # to the login page


LIST = "/admin/markets/instrument/"


def messages_of(response: Any) -> list[str]:
    """The messages an action left (those of the additions before it left out)."""
    return [str(m) for m in response.context["messages"] if "was added successfully" not in str(m)]


@pytest.mark.usefixtures("venues")
def test_an_added_instrument_is_streamed_and_a_removed_one_may_be_added_again(admin_client: Client) -> None:
    """The form stores through the same service as `manage.py instruments add`: streamed. Removed by the action, the
    instrument keeps its record; adding it again on the form streams that same record again."""
    assert admin_client.post(ADD, {"exchange": "binance", "symbol": "ETHUSDT"}).status_code == 302
    stored = Instrument.objects.get()
    assert stored.streamed
    response = admin_client.post(LIST, {"action": "remove_instruments", "_selected_action": [stored.pk]}, follow=True)
    assert messages_of(response) == ["binance: 1 removed (ETHUSDT)"]
    assert not Instrument.objects.get().streamed
    assert admin_client.post(ADD, {"exchange": "binance", "symbol": "ETHUSDT"}).status_code == 302
    again = Instrument.objects.get()
    assert (again.pk, again.streamed) == (stored.pk, True)
    assert again.filters


@pytest.mark.usefixtures("venues")
def test_the_actions_report_what_they_changed_by_exchange(admin_client: Client) -> None:
    for exchange, symbol in (("binance", "BTCUSDT"), ("binance", "ETHUSDT"), ("coinbase", "BTC-USD")):
        assert admin_client.post(ADD, {"exchange": exchange, "symbol": symbol}).status_code == 302
    pks = list(Instrument.objects.values_list("pk", flat=True))
    btc = Instrument.objects.get(symbol="BTCUSDT").pk
    first = admin_client.post(LIST, {"action": "remove_instruments", "_selected_action": [btc]}, follow=True)
    assert messages_of(first) == ["binance: 1 removed (BTCUSDT)"]
    response = admin_client.post(LIST, {"action": "remove_instruments", "_selected_action": pks}, follow=True)
    assert sorted(messages_of(response)) == [
        "binance: 1 removed (ETHUSDT); 1 already removed (BTCUSDT)",
        "coinbase: 1 removed (BTC-USD)",
    ]
    response = admin_client.post(LIST, {"action": "stream_again", "_selected_action": [btc]}, follow=True)
    assert messages_of(response) == ["binance: 1 streamed again (BTCUSDT)"]
    assert sorted(Instrument.objects.filter(streamed=True).values_list("symbol", flat=True)) == ["BTCUSDT"]
