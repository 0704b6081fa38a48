"""The admin prints prices and quantities by the one rule (``markets.numbers.plain``: to the instrument's tick and
step, never Django's 18 stored places), in lists, read-only pages and edit forms, and gap bounds as times with
the ids beside them. Django's test client, signed in as a superuser."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from markets.documents import to_ms
from markets.models import Candle, Gap, Instrument, Tick
from markets.services import candles_upsert, gap_open, ticks_ingest
from signals.models import Signal
from tests.markets.api_requests import MINUTE, T0
from tests.markets.test_api import candles, ticks

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("instruments")]


def cell(name: str, text: str) -> str:
    return f'<td class="field-{name}">{text}</td>'


def test_instrument_list_shows_filters_to_their_tick_and_step(admin_client: Client) -> None:
    """Tick 0.01, step 0.00001, min notional 5.00 (a quote amount: to the tick), not 0.010000000000000000."""
    html = admin_client.get("/admin/markets/instrument/").content.decode()
    assert "0.010000000000000000" not in html
    assert cell("show_tick_size", "0.01") in html
    assert cell("show_step_size", "0.00001") in html
    assert cell("show_min_notional", "5.00") in html
    form = admin_client.get(f"/admin/markets/instrument/{Instrument.objects.first().pk}/change/").content.decode()
    assert 'name="tick_size" value="0.01"' in form
    assert 'name="step_size" value="0.00001"' in form


def test_instrument_last_price_is_printed_to_the_tick(admin_client: Client) -> None:
    """The live last-price cell starts from the stored last trade, to the tick."""
    ticks_ingest(ticks=ticks(1))  # 61000.01
    Tick.objects.filter(trade_id=1).update(price=Decimal("61000.1"))
    html = admin_client.get("/admin/markets/instrument/").content.decode()
    assert 'data-testid="live-price">61000.10</span>' in html


def test_ticks_and_candles_list_and_show_plainly(admin_client: Client) -> None:
    """Tick price to the tick, qty to the step; candle OHLC to the tick and volume to the step, in the lists, on
    a tick's read-only page and in a candle's edit form."""
    ticks_ingest(ticks=ticks(2))
    candles_upsert(candles=candles(1))
    html = admin_client.get("/admin/markets/tick/").content.decode()
    assert cell("show_price", "61000.01") in html
    assert cell("show_qty", "0.00100") in html
    assert "0.001000000000000000" not in html
    page = admin_client.get(f"/admin/markets/tick/{Tick.objects.get(trade_id=2).pk}/change/").content.decode()
    assert '<div class="readonly">61000.02</div>' in page
    assert '<div class="readonly">0.00100</div>' in page
    html = admin_client.get("/admin/markets/candle/").content.decode()
    assert cell("show_open", "100.10") in html
    assert cell("show_volume", "2.50000") in html
    form = admin_client.get(f"/admin/markets/candle/{Candle.objects.get().pk}/change/").content.decode()
    assert 'name="close" value="100.60"' in form
    assert 'name="volume" value="2.50000"' in form
    assert 'name="taker_buy_quote_volume" value="125.125"' in form  # finer than the tick: nothing is cut


def test_gap_list_shows_times_beside_ids(admin_client: Client) -> None:
    """A trade gap: its ids, and the times of the stored ticks either side; a candle gap: its minutes, no ids."""
    every = ticks(30)
    ticks_ingest(ticks=every[:10] + every[20:])
    gap_open(exchange="binance", symbol="BTCUSDT", first_id=11, last_id=20)
    Gap.objects.create(
        exchange="binance",
        symbol="BTCUSDT",
        kind="candles",
        start=to_ms(T0 + MINUTE),
        end=to_ms(T0 + 3 * MINUTE),
        state=Gap.State.UNRECOVERABLE,
        missing=2,
    )
    html = admin_client.get("/admin/markets/gap/").content.decode()
    assert cell("first_id", "11") in html
    assert cell("last_id", "20") in html
    assert cell("start_time", "2025-06-02T00:00:00.063Z") in html  # tick 10: 9 × 7 ms
    assert cell("end_time", "2025-06-02T00:00:00.140Z") in html  # tick 21: 20 × 7 ms
    assert cell("start_time", "2025-06-02T00:01:00.000Z") in html
    assert cell("end_time", "2025-06-02T00:03:00.000Z") in html
    assert cell("first_id", "—") in html
    assert str(to_ms(T0 + MINUTE)) not in html
    trade = Gap.objects.get(kind="trades")
    page = admin_client.get(f"/admin/markets/gap/{trade.pk}/change/").content.decode()
    assert "2025-06-02T00:00:00.063Z" in page


def test_signal_admin_shows_ratios_without_trailing_zeros(admin_client: Client) -> None:
    """A signal's confidence and net vote: their own digits, not 18 places."""
    Signal.objects.create(
        strategy="ta-vote",
        version=1,
        exchange="binance",
        symbol="BTCUSDT",
        interval="1m",
        candle_open_time=T0,
        decision="BUY",
        confidence=Decimal("0.5000"),
        net=Decimal("-0.5000"),
        created_at=T0,
        updated_at=T0,
    )
    html = admin_client.get("/admin/signals/signal/").content.decode()
    assert cell("show_confidence", "0.5") in html
    page = admin_client.get(f"/admin/signals/signal/{Signal.objects.get().pk}/change/").content.decode()
    assert '<div class="readonly">-0.5</div>' in page
