"""The consolidated price: the pure median/deviation/flag rules (no database), then ``/api/v1/consolidated`` over
real stored ticks of three venues of BTC, and ``/api/v1/feeds``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from markets.consolidated import (
    ConsolidatedConfig,
    VenuePrice,
    consolidate,
    deviation_bps,
    median,
)
from markets.exchanges.base import InstrumentInfo, Source, TradeTick
from markets.exchanges.symbols import canonical
from markets.models import Feed
from markets.selectors import venue_prices
from markets.services import instruments_store, ticks_ingest

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
CONFIG = ConsolidatedConfig(stale_after=timedelta(seconds=60), outlier_bps=Decimal(50))
D = Decimal


def venue(exchange: str, price: str | None, age_s: float = 1, symbol: str = "") -> VenuePrice:
    """A venue whose last trade was ``age_s`` seconds before NOW (no trade when ``price`` is None)."""
    return VenuePrice(
        exchange=exchange,
        symbol=symbol or exchange.upper(),
        canonical="BTC-USD",
        quote="USD",
        price=None if price is None else D(price),
        ts=None if price is None else NOW - timedelta(seconds=age_s),
        trade_id=None if price is None else 1,
    )


# ---- the pure rules -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["3"], "3"),
        (["5", "1", "3"], "3"),
        (["4", "1", "3", "2"], "2.5"),
        (["100.10", "100.2"], "100.15"),
        (["0.1", "0.2"], "0.15"),
        (["7", "7", "1", "9", "8"], "7"),
    ],
)
def test_median_of_odd_and_even_counts(values: list[str], expected: str) -> None:
    """The middle value of an odd count, the mean of the two middle values of an even count, in any input order."""
    assert median([D(v) for v in values]) == D(expected)


def test_median_is_exact_at_full_precision() -> None:
    """Two 18-decimal prices of 38 significant digits average exactly: no rounding at Decimal's default 28
    digits, no float on the way."""
    a = D("12345678901234567890.123456789012345678")
    b = D("12345678901234567890.123456789012345679")
    assert median([a, b]) == D("12345678901234567890.1234567890123456785")
    assert median([a, b]) * 2 == a + b


def test_median_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="undefined"):
        median([])


@pytest.mark.parametrize(
    ("price", "reference", "bps"),
    [
        ("100.5", "100", "50.00"),
        ("99.5", "100", "-50.00"),
        ("100", "100", "0.00"),
        ("61010", "61000", "1.64"),  # 1.63934...
        ("61000", "61010", "-1.64"),  # -1.63907...
        ("62220", "61000", "200.00"),  # 2% above
        ("100.00005", "100", "0.00"),  # 0.005 bp: half-even to 0.00
        ("100.00015", "100", "0.02"),  # 0.015 bp: half-even to 0.02
    ],
)
def test_deviation_sign_and_rounding(price: str, reference: str, bps: str) -> None:
    """Above the reference is positive, below negative; basis points are rounded half-even to 0.01."""
    got = deviation_bps(D(price), D(reference))
    assert got == D(bps)
    assert str(got) == bps


def test_all_fresh_and_agreeing() -> None:
    """Three fresh venues within the limit: every one used, the price is their median, deviations from it."""
    c = consolidate(
        base="BTC",
        venues=[venue("binance", "61000.00"), venue("coinbase", "61010.00"), venue("kraken", "61020.00")],
        now=NOW,
        config=CONFIG,
    )
    assert (c.price, c.reference, c.reason, c.used) == (D("61010.00"), D("61010.00"), None, 3)
    assert [q.deviation_bps for q in c.venues] == [D("-1.64"), D("0.00"), D("1.64")]
    assert not any(q.stale or q.outlier for q in c.venues)
    assert [q.age for q in c.venues] == [timedelta(seconds=1)] * 3


def test_stale_venue_is_left_out() -> None:
    """A venue whose last trade is older than the limit is stale: not in the reference nor the price (though
    far off, it moves neither), yet still listed with its price and deviation. Exactly at the limit is fresh."""
    c = consolidate(
        base="BTC",
        venues=[venue("binance", "61000"), venue("coinbase", "61020", age_s=60), venue("kraken", "65000", age_s=61)],
        now=NOW,
        config=CONFIG,
    )
    assert [q.stale for q in c.venues] == [False, False, True]
    assert (c.reference, c.price, c.used) == (D("61010"), D("61010"), 2)
    kraken = c.venues[2]
    assert (kraken.used, kraken.age, kraken.venue.price) == (False, timedelta(seconds=61), D("65000"))
    assert kraken.deviation_bps == D("653.99")  # measured all the same, for the reader
    assert kraken.outlier  # and far enough to be an outlier as well: both flags are reported


def test_outlier_is_flagged_and_left_out() -> None:
    """The reference is the fresh median (outlier included); a venue more than the limit from it is an outlier and
    the price is the median of the others."""
    c = consolidate(
        base="BTC",
        venues=[venue("binance", "61000"), venue("coinbase", "61010"), venue("kraken", "62220")],
        now=NOW,
        config=CONFIG,
    )
    assert c.reference == D("61010")
    assert [q.outlier for q in c.venues] == [False, False, True]
    assert c.venues[2].deviation_bps == D("198.33")
    assert (c.price, c.used) == (D("61005"), 2)


def test_exactly_at_the_limit_is_not_an_outlier() -> None:
    """Beyond means strictly more than ``outlier_bps``, on the deviation as reported (to 0.01 bp)."""
    c = consolidate(
        base="BTC", venues=[venue("a", "100"), venue("b", "100.5"), venue("c", "100")], now=NOW, config=CONFIG
    )
    assert c.venues[1].deviation_bps == D("50.00")
    assert not c.venues[1].outlier
    assert c.used == 3


def test_all_stale_gives_no_price_with_a_reason() -> None:
    """With every venue stale there is no reference, no deviation, and no price; the reason says so."""
    c = consolidate(
        base="BTC",
        venues=[venue("binance", "61000", age_s=120), venue("kraken", "61001", age_s=3600)],
        now=NOW,
        config=CONFIG,
    )
    assert (c.price, c.reference, c.used) == (None, None, 0)
    assert c.reason == "every venue is stale: none has traded in the last 60 s"
    assert all(q.stale and q.deviation_bps is None and not q.outlier for q in c.venues)


@pytest.mark.parametrize(
    ("venues", "reason"),
    [
        ([], "no venue: no stored instrument of this base is quoted in USD/USDT/USDC"),
        ([venue("binance", None), venue("kraken", None)], "no venue has a stored trade (2 instruments)"),
        # Two fresh venues 2% apart: each is about 99 bps from their median, so neither can be trusted.
        ([venue("binance", "100"), venue("kraken", "102")], "each of the 2 fresh venues is more than 50 bps"),
    ],
)
def test_no_usable_venue_gives_no_price_with_a_reason(venues: list[VenuePrice], reason: str) -> None:
    c = consolidate(base="BTC", venues=venues, now=NOW, config=CONFIG)
    assert c.price is None
    assert c.reason is not None
    assert reason in c.reason


def test_venue_without_trades_is_stale() -> None:
    """An instrument with no stored trade is listed, stale, without price or deviation; the others carry on."""
    c = consolidate(base="BTC", venues=[venue("binance", "61000"), venue("kraken", None)], now=NOW, config=CONFIG)
    assert (c.price, c.used) == (D("61000"), 1)
    assert (c.venues[1].stale, c.venues[1].deviation_bps, c.venues[1].age) == (True, None, None)


def test_one_fresh_venue_is_its_own_price() -> None:
    c = consolidate(base="BTC", venues=[venue("binance", "61000.12")], now=NOW, config=CONFIG)
    assert (c.price, c.venues[0].deviation_bps, c.reason) == (D("61000.12"), D("0.00"), None)


# ---- the API over stored ticks -----------------------------------------------------------------------------------

BTC_VENUES = (("binance", "BTCUSDT"), ("coinbase", "BTC-USD"), ("kraken", "XBTUSD"))


def store_instrument(exchange: str, symbol: str) -> None:
    base, quote = canonical(exchange, symbol).split("-")
    instruments_store(
        instruments=[InstrumentInfo(exchange, symbol, canonical(exchange, symbol), base, quote, "TRADING")]
    )


def store_trades(exchange: str, symbol: str, prices: list[str], last_at: datetime, first_id: int = 1000) -> None:
    """Trades with consecutive ids, one second apart, the last at ``last_at``; stored newest first, so that only
    the trade id says which one is last."""
    n = len(prices)
    ticks = [
        TradeTick(
            exchange,
            symbol,
            first_id + i,
            D(p),
            D("0.01"),
            "buy",
            last_at - timedelta(seconds=n - 1 - i),
            last_at,
            Source.WS,
            first_id + i,
            first_id + i,
        )
        for i, p in enumerate(prices)
    ]
    ticks_ingest(ticks=ticks[::-1])


@pytest.fixture
def btc_venues() -> None:
    """BTC on three exchanges, plus instruments that must stay out: a euro quote and another base."""
    for exchange, symbol in (*BTC_VENUES, ("kraken", "XBTEUR"), ("binance", "ETHUSDT")):
        store_instrument(exchange, symbol)


def now() -> datetime:
    return datetime.now(UTC)


def get_json(client: Client, params: dict[str, str], status: int = 200, path: str = "/api/v1/consolidated") -> Any:
    response = client.get(path, params)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


@pytest.mark.django_db
@pytest.mark.usefixtures("btc_venues")
def test_api_flags_and_excludes_a_venue_two_percent_off(client: Client) -> None:
    """Kraken 2% above the others is an outlier and left out: the price is the median of Binance and Coinbase.
    Every venue's last trade (by trade id) is listed with its time, deviation and flags; the euro pair and ETH
    are not."""
    t = now() - timedelta(seconds=2)
    store_trades("binance", "BTCUSDT", ["60990.00", "61000.00"], t)
    store_trades("coinbase", "BTC-USD", ["61005.00", "61010.00"], t)
    store_trades("kraken", "XBTUSD", ["61001.0", "62220.0"], t)
    store_trades("kraken", "XBTEUR", ["50000.0"], t)
    store_trades("binance", "ETHUSDT", ["3000.00"], t)
    body = get_json(client, {"base": "btc"})
    assert body["base"] == "BTC"
    # These instruments were stored without filters: no tick, so prices print without trailing zeros.
    assert (body["price"], body["reference"], body["reason"], body["venues_used"]) == ("61005", "61010", None, 2)
    assert (body["stale_seconds"], body["outlier_bps"]) == (60.0, "50")
    assert body["at"].endswith("Z")
    venues = {(v["exchange"], v["symbol"]): v for v in body["venues"]}
    assert list(venues) == list(BTC_VENUES)
    kraken = venues["kraken", "XBTUSD"]
    assert kraken == {
        "exchange": "kraken",
        "symbol": "XBTUSD",
        "canonical": "BTC-USD",
        "quote": "USD",
        "price": "62220",
        "ts": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "trade_id": 1001,
        "age_ms": kraken["age_ms"],
        "deviation_bps": "198.33",
        "stale": False,
        "outlier": True,
        "used": False,
    }
    assert 2000 <= kraken["age_ms"] < 60_000
    assert [(v["deviation_bps"], v["outlier"], v["used"]) for v in body["venues"][:2]] == [
        ("-1.64", False, True),
        ("0", False, True),
    ]
    assert venues["binance", "BTCUSDT"]["quote"] == "USDT"


@pytest.mark.django_db
@pytest.mark.usefixtures("btc_venues")
def test_api_leaves_out_a_venue_with_an_old_last_trade(client: Client) -> None:
    """Coinbase's last trade is ten minutes old: it is stale and left out, whatever its price."""
    t = now() - timedelta(seconds=1)
    store_trades("binance", "BTCUSDT", ["61000.00"], t)
    store_trades("coinbase", "BTC-USD", ["58000.00"], t - timedelta(minutes=10))
    store_trades("kraken", "XBTUSD", ["61006.0"], t)
    body = get_json(client, {"base": "BTC"})
    assert (body["price"], body["reference"], body["venues_used"]) == ("61003", "61003", 2)
    coinbase = body["venues"][1]
    assert (coinbase["exchange"], coinbase["stale"], coinbase["used"], coinbase["price"]) == (
        "coinbase",
        True,
        False,
        "58000",
    )
    assert coinbase["age_ms"] >= 600_000


@pytest.mark.django_db
@pytest.mark.usefixtures("btc_venues")
def test_api_without_fresh_trades_answers_null_with_a_reason(client: Client) -> None:
    """Instruments but no trades at all: 200 with a null price and the reason; Kraken's XBT is BTC."""
    body = get_json(client, {"base": "XBT"})
    assert (body["base"], body["price"], body["reference"]) == ("BTC", None, None)
    assert body["reason"] == "no venue has a stored trade (3 instruments)"
    assert all(v["stale"] and v["price"] is None and v["ts"] is None and v["age_ms"] is None for v in body["venues"])


@pytest.mark.django_db
@pytest.mark.usefixtures("btc_venues")
def test_venue_prices_reads_each_instruments_highest_trade_id() -> None:
    """The selector takes each instrument's trade with the highest id, whatever the order ticks were stored in
    and whatever other symbols hold; an instrument without ticks comes back without a price."""
    t = now()
    store_trades("binance", "BTCUSDT", [str(61000 + i) for i in range(300)], t)
    store_trades("binance", "BTCUSDT", ["1.00"], t, first_id=1)  # an old trade stored last
    store_trades("binance", "ETHUSDT", ["3000.00"], t, first_id=5000)
    got = {(v.exchange, v.symbol): v for v in venue_prices(base="BTC")}
    assert list(got) == list(BTC_VENUES)
    binance = got["binance", "BTCUSDT"]
    assert (binance.price, binance.trade_id, binance.ts, binance.canonical, binance.quote) == (
        D("61299"),
        1299,
        t.replace(microsecond=t.microsecond // 1000 * 1000),
        "BTC-USDT",
        "USDT",
    )
    assert (got["kraken", "XBTUSD"].price, got["kraken", "XBTUSD"].ts) == (None, None)


@pytest.mark.django_db
@pytest.mark.usefixtures("btc_venues")
def test_unknown_base_is_a_404(client: Client) -> None:
    """A base no stored instrument has is a JSON 404 that says so (a typo does not look like a quiet market)."""
    body = get_json(client, {"base": "DOGE"}, status=404)
    assert body == {"error": "not found", "detail": "no stored instrument has base DOGE; see /api/v1/instruments"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "required"),
        ({"base": ""}, "required"),
        ({"base": "BTC-USD"}, "base=BTC"),
        ({"base": "xbt/usd"}, "base=XBT"),
        ({"base": "B TC"}, "not an asset"),
        ({"base": "BTC;DROP"}, "not an asset"),
        ({"base": "B" * 17}, "at most 16 characters"),
        ({"base": "BTC", "quote": "USD"}, None),
    ],
)
@pytest.mark.usefixtures("btc_venues")
def test_bad_base_is_a_400_naming_it(client: Client, params: dict[str, str], says: str | None) -> None:
    """Bad input is the API's usual 400 naming the field, with a message that says what would do."""
    body = get_json(client, params, status=400)
    assert body["error"] == "invalid request"
    field = "base" if says else "quote"
    assert list(body["fields"]) == [field]
    if says:
        assert any(says in m for m in body["fields"]["base"]), body


@pytest.mark.django_db
def test_feeds_lists_every_feed_record(client: Client) -> None:
    """Every Feed record by exchange and symbol, times UTC with Z, nulls kept; ``exchange`` filters."""
    at = datetime(2026, 11, 24, 12, 0, 0, 123000, tzinfo=UTC)
    Feed.objects.create(exchange="binance", symbol="ETHUSDT", state="down", reconnects=3, last_error="stalled 10 s")
    Feed.objects.create(
        exchange="binance", symbol="BTCUSDT", state="connected", last_trade_id=42, last_trade_at=at, lag_ms=35
    )
    Feed.objects.create(exchange="kraken", symbol="XBTUSD", state="reconnecting")
    body = get_json(client, {}, path="/api/v1/feeds")
    assert [(f["exchange"], f["symbol"]) for f in body] == [
        ("binance", "BTCUSDT"),
        ("binance", "ETHUSDT"),
        ("kraken", "XBTUSD"),
    ]
    btc = body[0]
    assert btc == {
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "state": "connected",
        "last_trade_id": 42,
        "last_trade_at": "2026-11-24T12:00:00.123Z",
        "lag_ms": 35,
        "reconnects": 0,
        "last_error": "",
        "updated_at": btc["updated_at"],
    }
    assert btc["updated_at"].endswith("Z")
    assert (body[1]["last_trade_at"], body[1]["reconnects"], body[1]["last_error"]) == (None, 3, "stalled 10 s")
    assert [f["symbol"] for f in get_json(client, {"exchange": "binance"}, path="/api/v1/feeds")] == [
        "BTCUSDT",
        "ETHUSDT",
    ]
    bad = get_json(client, {"exchange": "nyse"}, status=400, path="/api/v1/feeds")
    assert list(bad["fields"]) == ["exchange"]


def test_schema_documents_feeds_and_consolidated(client: Client) -> None:
    """The OpenAPI document builds with both endpoints, their parameters and the 404 of an unknown base."""
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    consolidated = paths["/api/v1/consolidated"]["get"]
    assert [(p["name"], p.get("required")) for p in consolidated["parameters"]] == [("base", True)]
    assert {"200", "400", "404"} <= set(consolidated["responses"])
    assert [p["name"] for p in paths["/api/v1/feeds"]["get"]["parameters"]] == ["exchange"]
