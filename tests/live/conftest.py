"""Fixtures of the live page's tests: two stored Binance instruments and a signed-in staff member's client."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from markets.models import Instrument


@pytest.fixture
def instruments() -> None:
    """BTCUSDT and ETHUSDT on Binance, with their tick and step sizes."""
    for symbol, base in (("BTCUSDT", "BTC"), ("ETHUSDT", "ETH")):
        Instrument.objects.create(
            exchange="binance",
            symbol=symbol,
            canonical=f"{base}-USDT",
            base=base,
            quote="USDT",
            tick_size=Decimal("0.01"),
            step_size=Decimal("0.00001000"),
        )


@pytest.fixture
def staff_client() -> Callable[..., Client]:
    """Makes a test client signed in as a new staff user (once per test: the user name is fixed); keyword
    arguments go to ``Client``."""

    def make(**kwargs: object) -> Client:
        user = get_user_model().objects.create_user("ops", password="pw-for-tests-only", is_staff=True)
        client = Client(**kwargs)
        client.force_login(user)
        return client

    return make
