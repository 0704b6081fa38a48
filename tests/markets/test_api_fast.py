"""The candles and ticks answers built from output-shaped reads (markets/reads.py, markets/api/fast.py) say exactly
what the serializers (the OpenAPI schema) say for the same stored data, numbers printed by ``markets.numbers.plain``
with the instrument's tick (prices, quote amounts) or step (quantities) places; wider candles kept as rollups follow
a rewrite of their minutes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from markets.api.serializers import PriceHistoryOut, TickOut
from markets.exchanges.base import CandleBar, Source, TradeTick
from markets.history import get_price_history
from markets.models import CandleRollup, Instrument
from markets.numbers import places, plain
from markets.selectors import tick_page
from markets.services import candles_upsert, ticks_ingest
from tests.markets.api_requests import MINUTE, T0, get_json

pytestmark = pytest.mark.django_db
PRICES = ("open", "high", "low", "close", "quote_volume", "taker_buy_quote_volume")
QUANTITIES = ("volume", "taker_buy_volume")
# (symbol, tick, step): Binance's BTCUSDT, a coarse-step coin, and one stored without filters (places 0)
INSTRUMENTS = (
    ("BTCUSDT", "0.01000000", "0.00001000"),
    ("DOGEUSDT", "0.00001000", "1.00000000"),
    ("ODDUSD", None, None),
)


def store_instruments() -> None:
    for symbol, tick, step in INSTRUMENTS:
        Instrument.objects.create(
            exchange="binance",
            symbol=symbol,
            canonical=f"{symbol[:-4]}-{symbol[-4:]}",
            base=symbol[:-4],
            quote=symbol[-4:],
            tick_size=None if tick is None else Decimal(tick),
            step_size=None if step is None else Decimal(step),
        )


def minutes(symbol: str, n: int, quiet: int) -> list[CandleBar]:
    """``n`` closed 1m candles from T0 with 8-decimal numbers as klines carry them (some finer than the tick), the
    ``quiet``-th flat, zero-volume and synthetic."""
    out = []
    for i in range(n):
        t = T0 + i * MINUTE
        p = Decimal("0.12345000") + Decimal(i) / 1000 if symbol == "DOGEUSDT" else Decimal("60000.10000000") + i
        if i == quiet:
            z = Decimal("0E-8")
            out.append(
                CandleBar(
                    "binance",
                    symbol,
                    "1m",
                    t,
                    t + MINUTE - timedelta(milliseconds=1),
                    p,
                    p,
                    p,
                    p,
                    z,
                    z,
                    0,
                    z,
                    z,
                    "trades",
                    True,
                    True,
                )
            )
            continue
        out.append(
            CandleBar(
                *("binance", symbol, "1m", t, t + MINUTE - timedelta(milliseconds=1)),
                p,
                p + Decimal("1.50000000"),
                p - Decimal("0.25000000"),
                p + Decimal("0.12500000"),
                Decimal("2.00000000") + i,
                Decimal("120000.12345678"),
                7 + i,
                Decimal("1.00000000"),
                Decimal("60000.00500000"),
                "exchange",
            )
        )
    return out


def expected(symbol: str, interval: str, start: str, end: str) -> dict[str, Any]:
    """What the serializers say for the stored data (the schema's shape), numbers printed by the rule."""
    from markets.api.params import TimeParam

    t = TimeParam()
    history = get_price_history(symbol, t.to_internal_value(start), t.to_internal_value(end), interval, fetch=False)
    body = dict(PriceHistoryOut(history).data)
    i = Instrument.objects.get(exchange="binance", symbol=symbol)
    pp, qp = places(i.tick_size), places(i.step_size)
    body["candles"] = [
        {k: plain(v, pp) if k in PRICES else plain(v, qp) if k in QUANTITIES else v for k, v in dict(c).items()}
        for c in body["candles"]
    ]
    return body


@pytest.mark.parametrize("interval", ["1m", "5m", "1h"])
def test_candles_say_what_the_serializers_say(client: Client, interval: str) -> None:
    """For instruments with different tick and step sizes (and one without), with a quiet synthetic minute and a
    last hour short of minutes, the fast answer equals the serializers' (field order included) with every number
    printed by ``plain``; a second read (from the kept rollups) says the same."""
    store_instruments()
    for symbol, *_ in INSTRUMENTS:
        candles_upsert(candles=minutes(symbol, 100, quiet=7))
        params = {"exchange": "binance", "symbol": symbol, "interval": interval, "fetch": "false"}
        params |= {"start": "2025-06-02T00:00:00Z", "end": "2025-06-02T02:00:00Z"}
        body = get_json(client, "/api/v1/candles", params)
        want = expected(symbol, interval, params["start"], params["end"])
        assert body == want
        assert [list(c) for c in body["candles"]] == [list(c) for c in want["candles"]]
        assert list(body) == list(want)
        assert get_json(client, "/api/v1/candles", params) == want  # again: the rollups kept by the first read
        assert body["complete"] is False
        assert body["missing"] == [{"start": "2025-06-02T01:40:00.000Z", "end": "2025-06-02T02:00:00.000Z"}]
        assert body["candles"][0 if interval != "1m" else 7]["synthetic"] is (interval == "1m")
    doge = get_json(client, "/api/v1/candles", {**params, "symbol": "DOGEUSDT", "interval": "1m"})["candles"][0]
    assert (doge["open"], doge["volume"], doge["quote_volume"]) == ("0.12345", "2", "120000.12345678")
    btc = get_json(client, "/api/v1/candles", {**params, "symbol": "BTCUSDT", "interval": "1m"})["candles"][7]
    assert (btc["open"], btc["volume"], btc["synthetic"]) == ("60007.10", "0.00000", True)
    odd = get_json(client, "/api/v1/candles", {**params, "symbol": "ODDUSD", "interval": "1m"})["candles"][0]
    assert (odd["open"], odd["volume"], odd["taker_buy_quote_volume"]) == ("60000.1", "2", "60000.005")


def test_schema_fields_are_the_answer_fields(client: Client) -> None:
    """The schema's CandleOut and TickOut list exactly the fields of the fast answers, in their order."""
    schema = client.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    from markets.reads import CANDLE_FIELDS, TICK_FIELDS

    assert tuple(schema["CandleOut"]["properties"]) == CANDLE_FIELDS
    assert tuple(schema["TickOut"]["properties"]) == TICK_FIELDS


def test_a_rewritten_minute_changes_its_kept_rollups(client: Client) -> None:
    """A read keeps the complete wider candles; rewriting one of their minutes (a backfill rebuilding it) marks them
    stale, and the next read aggregates the new minute."""
    store_instruments()
    candles_upsert(candles=minutes("BTCUSDT", 60, quiet=-1))
    params = {"exchange": "binance", "symbol": "BTCUSDT", "interval": "5m", "fetch": "false"}
    params |= {"start": "2025-06-02T00:00:00Z", "end": "2025-06-02T01:00:00Z"}
    assert get_json(client, "/api/v1/candles", params)["complete"] is True
    assert CandleRollup.objects.filter(interval="5m", candle__isnull=False).count() == 12
    bar = minutes("BTCUSDT", 60, quiet=-1)[12]
    candles_upsert(candles=[replace(bar, high=Decimal("99999.99"), source="trades")])
    body = get_json(client, "/api/v1/candles", params)
    assert body["candles"][2]["high"] == "99999.99"
    assert body["candles"][1]["high"] == get_json(client, "/api/v1/candles", params)["candles"][1]["high"]
    assert body == expected("BTCUSDT", "5m", params["start"], params["end"])


def ticks(symbol: str, n: int) -> list[TradeTick]:
    return [
        TradeTick(
            *("binance", symbol, 1 + i),
            Decimal("61000.01000000") + Decimal(i % 97) / 100 if symbol == "BTCUSDT" else Decimal("0.12345000"),
            Decimal("0.00100000") * (1 + i % 5) if symbol == "BTCUSDT" else Decimal("1500.00000000"),
            "buy" if i % 3 else "sell",
            T0 + timedelta(milliseconds=7 * i),
            T0 + timedelta(milliseconds=7 * i + 40),
            Source.WS,
            *(1 + i, 1 + i),
        )
        for i in range(n)
    ]


def test_ticks_say_what_the_serializers_say(client: Client) -> None:
    """A page of ticks equals the serializers' page, numbers printed with the tick and step places."""
    store_instruments()
    for symbol, tick, step in INSTRUMENTS[:2]:
        ticks_ingest(ticks=ticks(symbol, 300))
        body = get_json(client, "/api/v1/ticks", {"exchange": "binance", "symbol": symbol, "limit": "250"})
        page = tick_page(exchange="binance", symbol=symbol, limit=250)
        want = [
            {**dict(t), "price": plain(t["price"], places(tick)), "qty": plain(t["qty"], places(step))}
            for t in TickOut(page.ticks, many=True).data
        ]
        assert body["results"] == want
        assert [list(t) for t in body["results"]] == [list(t) for t in want]
        assert "from_id=251" in body["next"]
    doge = get_json(client, "/api/v1/ticks", {"exchange": "binance", "symbol": "DOGEUSDT", "limit": "1"})
    assert (doge["results"][0]["price"], doge["results"][0]["qty"]) == ("0.12345", "1500")


def test_kept_rollups_follow_a_new_tick_size(client: Client) -> None:
    """Rollups keep their numbers printed with the tick and step of when they were kept; after the exchange changes
    the instrument's filters the same candles print with the new places, as the serializers say."""
    store_instruments()
    candles_upsert(candles=minutes("BTCUSDT", 60, quiet=3))
    params = {"exchange": "binance", "symbol": "BTCUSDT", "interval": "15m", "fetch": "false"}
    params |= {"start": "2025-06-02T00:00:00Z", "end": "2025-06-02T01:00:00Z"}
    first = get_json(client, "/api/v1/candles", params)
    assert first["candles"][0]["open"] == "60000.10"
    Instrument.objects.filter(symbol="BTCUSDT").update(tick_size=Decimal("0.0001"), step_size=Decimal("0.1"))
    body = get_json(client, "/api/v1/candles", params)
    assert (body["candles"][0]["open"], body["candles"][0]["volume"]) == ("60000.1000", "130.0")
    assert body == expected("BTCUSDT", "15m", params["start"], params["end"])


def test_only_wider_candles_that_may_be_complete_are_marked() -> None:
    """A closed minute marks the rollups of its five wider candles; one whose wider candles all end later than a
    minute from now (tomorrow's first minute) marks none, and an open minute marks none."""
    from datetime import UTC, datetime

    from markets.intervals import floor
    from markets.rollups import mark_stale

    old = minutes("BTCUSDT", 1, quiet=-1)[0]
    tomorrow = floor(datetime.now(UTC), "1d") + timedelta(days=1)
    assert mark_stale([old]) == 5
    assert mark_stale([replace(old, open_time=tomorrow, close_time=tomorrow + MINUTE)]) == 0
    assert mark_stale([replace(old, closed=False)]) == 0
    assert CandleRollup.objects.filter(candle__isnull=True).count() == 5
