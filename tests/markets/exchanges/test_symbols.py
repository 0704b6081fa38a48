"""Canonical BASE-QUOTE names from each venue's spelling and back; Kraken's aliases; unknown names refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from markets.exchanges.symbols import as_stored, asset, canonical, venue_symbol


@pytest.mark.parametrize(
    ("exchange", "symbol", "expected"),
    [
        ("binance", "BTCUSDT", "BTC-USDT"),
        ("binance", "btcusdt", "BTC-USDT"),  # stream names are lower case
        ("binance", "ETHBTC", "ETH-BTC"),
        ("binance", "BTCFDUSD", "BTC-FDUSD"),  # FDUSD before USD
        ("binance", "USDCUSDT", "USDC-USDT"),  # USDT before USD
        ("binance", "BNBTUSD", "BNB-TUSD"),
        ("coinbase", "BTC-USD", "BTC-USD"),
        ("coinbase", "ETH-USDT", "ETH-USDT"),
        ("kraken", "XXBTZUSD", "BTC-USD"),  # REST result key
        ("kraken", "XBTUSD", "BTC-USD"),  # altname
        ("kraken", "XBT/USD", "BTC-USD"),  # WebSocket v1 wsname
        ("kraken", "BTC/USD", "BTC-USD"),  # WebSocket v2
        ("kraken", "XETHXXBT", "ETH-BTC"),
        ("kraken", "ETHXBT", "ETH-BTC"),
        ("kraken", "XETHZEUR", "ETH-EUR"),
        ("kraken", "XXDGZUSD", "DOGE-USD"),
        ("kraken", "XDGUSD", "DOGE-USD"),
        ("kraken", "XDG/USD", "DOGE-USD"),
        ("kraken", "DOGE/USD", "DOGE-USD"),
        ("kraken", "XBTUSDT", "BTC-USDT"),  # newer pairs: the key is the altname
        ("kraken", "USDTZUSD", "USDT-USD"),
        ("kraken", "XTZUSD", "XTZ-USD"),  # Tezos: not an X-prefixed code, not "XT" + "ZUSD"
        ("kraken", "XLTCZUSD", "LTC-USD"),
        ("kraken", "ZEURZUSD", "EUR-USD"),
    ],
)
def test_canonical(exchange: str, symbol: str, expected: str) -> None:
    """Every venue spelling of a pair names the same BASE-QUOTE instrument."""
    assert canonical(exchange, symbol) == expected


@pytest.mark.parametrize(
    ("exchange", "name", "form", "expected"),
    [
        ("binance", "BTC-USDT", "rest", "BTCUSDT"),
        ("binance", "BTC-USDT", "ws", "BTCUSDT"),
        ("coinbase", "BTC-USD", "rest", "BTC-USD"),
        ("coinbase", "BTC-USD", "ws", "BTC-USD"),
        ("kraken", "BTC-USD", "rest", "XBTUSD"),
        ("kraken", "BTC-USD", "ws", "BTC/USD"),
        ("kraken", "ETH-BTC", "rest", "ETHXBT"),
        ("kraken", "DOGE-USD", "rest", "XDGUSD"),
        ("kraken", "DOGE-USD", "ws", "DOGE/USD"),
        ("kraken", "BTC-USDT", "rest", "XBTUSDT"),
        ("kraken", "ETH-EUR", "rest", "ETHEUR"),
    ],
)
def test_venue_symbol_round_trips(exchange: str, name: str, form: str, expected: str) -> None:
    """A canonical name written the venue's way reads back as itself."""
    assert venue_symbol(exchange, name, form=form) == expected
    assert canonical(exchange, expected) == name


def test_default_form_is_rest() -> None:
    """Without a form, Kraken's REST altname is given."""
    assert venue_symbol("kraken", "BTC-USD") == "XBTUSD"


@pytest.mark.parametrize(
    ("code", "expected"),
    [("XXBT", "BTC"), ("XBT", "BTC"), ("XETH", "ETH"), ("ZUSD", "USD"), ("ZEUR", "EUR"), ("XDG", "DOGE"),
     ("XXDG", "DOGE"), ("XXRP", "XRP"), ("ZGBP", "GBP"), ("USDT", "USDT"), ("XTZ", "XTZ"), ("SOL", "SOL")],
)  # fmt: skip
def test_kraken_asset_aliases(code: str, expected: str) -> None:
    """Kraken's X/Z-prefixed legacy codes and XBT/XDG become the common names; other codes are kept."""
    assert asset("kraken", code) == expected


@pytest.mark.parametrize(
    ("exchange", "symbol", "expected"),
    [
        ("kraken", "XBT/USD", "XBTUSD"),
        ("kraken", "BTC/USD", "XBTUSD"),
        ("kraken", "XXBTZUSD", "XBTUSD"),
        ("kraken", "XBTUSD", "XBTUSD"),
        ("binance", "BTCUSDT", "BTCUSDT"),
        ("binance", "FOOXYZ", "FOOXYZ"),  # not read at all: Binance writes a pair one way only
        ("coinbase", "BTC-USD", "BTC-USD"),
    ],
)
def test_as_stored_respells_only_a_venue_with_several_spellings(exchange: str, symbol: str, expected: str) -> None:
    """Kraken's pair is stored under its altname however it was written; other venues' symbols are kept."""
    assert as_stored(exchange, symbol) == expected


def test_as_stored_refuses_what_it_cannot_read() -> None:
    """A Kraken symbol that is no pair is a ValueError naming it."""
    with pytest.raises(ValueError, match="cannot split kraken symbol 'FOOBAR'"):
        as_stored("kraken", "FOOBAR")


def test_other_venues_keep_asset_codes() -> None:
    """Only Kraken has aliases: a Binance asset called XBT would stay XBT."""
    assert asset("binance", "XBT") == "XBT"
    assert asset("coinbase", "BTC") == "BTC"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: canonical("bitstamp", "BTCUSD"), "unknown exchange 'bitstamp'"),
        (lambda: venue_symbol("ftx", "BTC-USD"), "unknown exchange 'ftx'"),
        (lambda: canonical("binance", "BTCXYZ"), "cannot split binance symbol 'BTCXYZ'"),
        (lambda: canonical("binance", "USDT"), "cannot split binance symbol 'USDT'"),
        (lambda: canonical("binance", ""), "binance symbol must be a non-empty string"),
        (lambda: canonical("coinbase", "BTCUSD"), "cannot split coinbase symbol 'BTCUSD'"),
        (lambda: canonical("coinbase", "BTC-USD-X"), "cannot split coinbase symbol 'BTC-USD-X'"),
        (lambda: canonical("coinbase", "btc-usd"), "cannot split coinbase symbol 'btc-usd'"),
        (lambda: canonical("kraken", "XBT/"), "cannot split kraken symbol 'XBT/'"),
        (lambda: canonical("kraken", "FOOBAR"), "cannot split kraken symbol 'FOOBAR'"),
        (lambda: canonical("kraken", None), "kraken symbol must be a non-empty string"),
        (lambda: venue_symbol("kraken", "BTCUSD"), "canonical symbol must be BASE-QUOTE"),
        (lambda: venue_symbol("kraken", "btc-usd"), "canonical symbol must be BASE-QUOTE"),
        (lambda: venue_symbol("kraken", "BTC-USD", form="v1"), "symbol form must be one of rest, ws"),
        (lambda: venue_symbol("binance", "BTC-XYZ"), "'BTCXYZ' for 'BTC-XYZ' would not read back: cannot split"),
        (lambda: venue_symbol("binance", "BT-CUSDT"), "'BTCUSDT' for 'BT-CUSDT' would read back as 'BTC-USDT'"),
        (lambda: asset("kraken", "xbt"), "kraken asset code must be upper-case"),
    ],
)
def test_refusals_name_the_input(call: Callable[[], object], message: str) -> None:
    """An unknown exchange, form or unsplittable symbol is a ValueError naming it."""
    with pytest.raises(ValueError, match=message):
        call()
