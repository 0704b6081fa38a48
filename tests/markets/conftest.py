"""Fixtures shared by the markets tests."""

from __future__ import annotations

from decimal import Decimal

import pytest

from markets.models import Instrument


@pytest.fixture
def instruments() -> list[Instrument]:
    """BTCUSDT and ETHUSDT on Binance, with Binance's filters."""
    return [
        Instrument.objects.create(
            exchange="binance",
            symbol=s,
            canonical=f"{s[:3]}-USDT",
            base=s[:3],
            quote="USDT",
            tick_size=Decimal("0.01000000"),
            step_size=Decimal("0.00001000"),
            min_notional=Decimal("5.00000000"),
        )
        for s in ("BTCUSDT", "ETHUSDT")
    ]
