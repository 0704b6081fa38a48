"""``manage.py instruments add|remove|list`` against the simulator: instruments are stored with the exchange's own
data and streamed; unknown symbols are refused by name while the known ones of the same call are added; removing
keeps the record and its data; ``--all`` adds what the exchange lists as trading."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.history import get_price_history
from markets.models import Candle, Instrument, Tick
from markets.selectors import streamed_symbols
from markets.services import ticks_ingest
from markets.store import collection
from markets.types import Source, TradeTick
from tests.conftest import sim_config
from tradingsite.devstack import free_port

SYMBOLS = ("BTCUSDT", "ETHUSDT", "XRPUSDT", "DOGEUSDT", "ETHBTC")
MINUTE = timedelta(minutes=1)
pytestmark = pytest.mark.django_db


@pytest.fixture
def market(settings: Any) -> Iterator[Simulator]:
    """The simulator as Binance, listing five symbols (one quoted in BTC). The ticks and candles the tests store are
    deleted after (raw writes are not rolled back with the test's transaction)."""
    with running_in_thread(sim_config(symbols=SYMBOLS, explicit_symbols=True, rate=1.0, history_days=0.05)) as sim:
        settings.BINANCE_REST_URL = sim.url
        yield sim
    for model in (Tick, Candle):
        collection(model).delete_many({"symbol": {"$in": ["XRPUSDT", "DOGEUSDT"]}})


def run(*args: str) -> str:
    """``manage.py instruments *args``; its standard output."""
    out = io.StringIO()
    quiet = ("--no-progress",) if args[0] == "add" else ()
    call_command("instruments", *args, *quiet, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def tick(symbol: str, trade_id: int) -> TradeTick:
    t = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return TradeTick(
        "binance", symbol, trade_id, Decimal("0.5"), Decimal(1), "buy", t, t, Source.WS, trade_id, trade_id
    )


@pytest.mark.usefixtures("market")
def test_add_stores_the_exchanges_data_and_streams_them() -> None:
    out = run("add", "binance", "xrpusdt,DOGEUSDT")
    assert out.strip() == "binance: 2 added (XRPUSDT, DOGEUSDT)"
    xrp = Instrument.objects.get(exchange="binance", symbol="XRPUSDT")
    assert (xrp.canonical, xrp.base, xrp.quote, xrp.status) == ("XRP-USDT", "XRP", "USDT", "TRADING")
    assert xrp.tick_size is not None
    assert xrp.filters, "the exchange's own filters are stored"
    assert streamed_symbols(exchange="binance") == ("DOGEUSDT", "XRPUSDT")
    assert run("add", "binance", "XRPUSDT").strip() == "binance: 0 added, 1 already streamed (XRPUSDT)"


@pytest.mark.usefixtures("market")
def test_unknown_symbols_are_refused_by_name_and_the_known_ones_added() -> None:
    """The command fails naming each unknown symbol and saying which were added; those are stored and streamed."""
    out = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("instruments", "add", "binance", "XRPUSDT,FOOUSDT", "NOPE,DOGEUSDT", "--no-progress", stdout=out)
    assert str(refused.value) == "refused: FOOUSDT, NOPE are not listed on binance (added: XRPUSDT, DOGEUSDT)"
    assert out.getvalue().strip() == "binance: 2 added (XRPUSDT, DOGEUSDT)"
    assert streamed_symbols(exchange="binance") == ("DOGEUSDT", "XRPUSDT")
    with pytest.raises(CommandError, match=r"^refused: FOOUSDT is not listed on binance \(added: none\)$"):
        run("add", "binance", "FOOUSDT")
    assert Instrument.objects.count() == 2


def test_an_exchange_that_cannot_be_reached_stores_nothing(settings: Any) -> None:
    settings.BINANCE_REST_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match=f"binance could not be reached at {settings.BINANCE_REST_URL}"):
        run("add", "binance", "XRPUSDT")
    assert not Instrument.objects.exists()


@pytest.mark.usefixtures("market")
def test_remove_keeps_the_record_and_its_data_and_adding_again_streams_it() -> None:
    run("add", "binance", "XRPUSDT,DOGEUSDT")
    ticks_ingest(ticks=[tick("XRPUSDT", 7)])
    assert run("remove", "binance", "XRPUSDT").strip() == (
        "binance: 1 removed (XRPUSDT); their stored trades and candles are kept"
    )
    assert streamed_symbols(exchange="binance") == ("DOGEUSDT",)
    assert Instrument.objects.filter(symbol="XRPUSDT", streamed=False).exists()
    assert Tick.objects.filter(symbol="XRPUSDT").count() == 1
    with pytest.raises(CommandError, match=r"^FOOUSDT is not a stored binance instrument \(removed: none\)$"):
        run("remove", "binance", "XRPUSDT,FOOUSDT")
    assert run("add", "binance", "XRPUSDT,DOGEUSDT").strip() == (
        "binance: 0 added, 1 streamed again (XRPUSDT), 1 already streamed (DOGEUSDT)"
    )
    assert streamed_symbols(exchange="binance") == ("DOGEUSDT", "XRPUSDT")
    assert Tick.objects.filter(symbol="XRPUSDT").count() == 1


@pytest.mark.usefixtures("market")
def test_list_prints_every_stored_instrument_with_its_last_trade() -> None:
    assert run("list").strip() == "no instruments stored"
    run("add", "binance", "XRPUSDT,DOGEUSDT")
    run("remove", "binance", "DOGEUSDT")
    ticks_ingest(ticks=[tick("XRPUSDT", 6), tick("XRPUSDT", 7)])
    lines = [line.split() for line in run("list", "--exchange", "binance").splitlines()]
    assert lines == [
        ["exchange", "symbol", "canonical", "status", "streamed", "last", "stored", "trade", "(UTC)"],
        ["binance", "DOGEUSDT", "DOGE-USDT", "TRADING", "no", "none"],
        ["binance", "XRPUSDT", "XRP-USDT", "TRADING", "yes", "2026-01-02", "03:04:05", "#7"],
    ]
    assert run("list", "--exchange", "kraken").strip() == "no instruments stored for kraken"


@pytest.mark.usefixtures("market")
def test_all_adds_every_trading_instrument_of_a_quote() -> None:
    assert run("add", "binance", "--all", "--quote", "usdt").strip() == (
        "binance (every trading instrument quoted in USDT): 4 added (BTCUSDT, DOGEUSDT, ETHUSDT, XRPUSDT)"
    )
    assert streamed_symbols(exchange="binance") == ("BTCUSDT", "DOGEUSDT", "ETHUSDT", "XRPUSDT")
    assert run("add", "binance", "--all").strip() == (
        "binance: 1 added (ETHBTC), 4 already streamed (BTCUSDT, DOGEUSDT, ETHUSDT, XRPUSDT)"
    )


@pytest.mark.usefixtures("market")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "binance"), "give the symbols to add, or --all"),
        (("add", "binance", "XRPUSDT", "--all"), "give the symbols to add, or --all"),
        (("add", "binance", "XRPUSDT", "--quote", "USDT"), "--quote filters --all"),
        (("add", "binance", "XRPUSDT", "--since", "tomorrow"), "--since 'tomorrow' is neither ISO-8601"),
        (
            ("add", "binance", "XRPUSDT", "--since", "2099-01-01T00:00:00Z"),
            "2099-01-01 00:00:00 UTC is not in the past",
        ),
        (("add", "nasdaq", "AAPL"), "invalid choice: 'nasdaq'"),
    ],
)
def test_bad_input_is_named_and_stores_nothing(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        run(*args)
    assert not Instrument.objects.exists()


@pytest.mark.usefixtures("market")
def test_a_history_request_stores_its_instrument_without_streaming_it() -> None:
    """Asking for the history of a symbol not stored stores its instrument (with the exchange's data), but only an
    operator's add streams it."""
    end = iv.floor(datetime.now(UTC), "1m")
    get_price_history("XRPUSDT", end - 5 * MINUTE, end)
    assert Instrument.objects.filter(symbol="XRPUSDT", streamed=False).exists()
    assert streamed_symbols(exchange="binance") == ()
    assert run("add", "binance", "XRPUSDT").strip() == "binance: 0 added, 1 streamed again (XRPUSDT)"


@pytest.mark.parametrize(
    ("exchange", "setting", "symbols"),
    [
        ("coinbase", "COINBASE_REST_URL", ["BTC-USD", "ETH-USD"]),
        ("kraken", "KRAKEN_REST_URL", ["ETHUSD", "XBTUSD"]),
    ],
)
def test_all_reads_each_venues_own_trading_status(
    market: Simulator, settings: Any, exchange: str, setting: str, symbols: list[str]
) -> None:
    """Coinbase and Kraken say "online" where Binance says TRADING; Kraken's XBT/USD is stored as XBTUSD."""
    setattr(settings, setting, market.venue_url(exchange))
    run("add", exchange, "--all", "--quote", "USD")
    assert list(streamed_symbols(exchange=exchange)) == symbols
    assert run("remove", exchange, symbols[-1]).startswith(f"{exchange}: 1 removed ({symbols[-1]})")
