"""Which instruments the stream workers stream: the stored ones of an exchange, less the removed."""

from __future__ import annotations

import pytest

from markets.models import Instrument
from markets.selectors import streamed_symbols


@pytest.mark.django_db
def test_streamed_symbols_are_the_exchanges_instruments_not_removed() -> None:
    for exchange, symbol, streamed in [
        ("binance", "ETHUSDT", True),
        ("binance", "BTCUSDT", True),
        ("binance", "XRPUSDT", False),
        ("kraken", "XBTUSD", True),
    ]:
        Instrument.objects.create(
            exchange=exchange, symbol=symbol, canonical=symbol, base="X", quote="Y", streamed=streamed
        )
    assert streamed_symbols(exchange="binance") == ("BTCUSDT", "ETHUSDT")
    assert streamed_symbols(exchange="coinbase") == ()
    assert Instrument(exchange="binance", symbol="DOGEUSDT").streamed, "an instrument is streamed unless removed"
