"""Several venues over one market: assets move together across venues with a realistic basis, each venue
symbol trades on its own, the shared reference is deterministic and prefix-stable, and the registry,
config, CLI and status see every venue."""

from __future__ import annotations

import math

import aiohttp
import numpy as np
import pytest

from exchangesim.__main__ import parse_args
from exchangesim.coinbase.venue import CoinbaseVenue
from exchangesim.engine.aggregate import MINUTE
from exchangesim.engine.market import Listing, Market, tape_key
from exchangesim.engine.reference import AssetPath, PathParams, PriceReference
from exchangesim.server import VENUES, Simulator
from exchangesim.symbols import UnknownSymbolError, synthetic_spec
from tests.conftest import shared_file, sim_config
from tests.exchangesim.test_coinbase import cb_get, truth
from tests.exchangesim.test_replay import CAPTURE

T0 = 1_722_470_400_000  # 2024-08-01 00:00 UTC


async def _minute_closes(
    sim: Simulator, http: aiohttp.ClientSession, binance: str, coinbase: str, minutes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Closes of the same minutes on Binance (klines) and Coinbase (candles), for minutes both traded in."""
    end = sim.market.started_ms // MINUTE * MINUTE
    start = end - minutes * MINUTE
    async with http.get(
        f"{sim.url}/api/v3/klines",
        params={"symbol": binance, "interval": "1m", "startTime": str(start), "endTime": str(end - 1)},
    ) as r:
        klines = {k[0] // 1000: float(k[4]) for k in await r.json()}
    candles: dict[int, float] = {}
    for s in range(start // 1000, end // 1000, 300 * 60):
        _, rows, _ = await cb_get(
            http, sim, f"/products/{coinbase}/candles", granularity=60, start=s, end=min(s + 299 * 60, end // 1000 - 60)
        )
        candles.update({c[0]: c[4] for c in rows})
    common = sorted(set(klines) & set(candles))
    assert len(common) > minutes * 0.95
    return np.array([klines[t] for t in common]), np.array([candles[t] for t in common])


@pytest.mark.parametrize(("binance", "coinbase"), [("BTCUSDT", "BTC-USD"), ("ETHUSDT", "ETH-USD")])
async def test_same_asset_moves_together_across_venues(binance: str, coinbase: str) -> None:
    """Over an hour of history, minute closes of an asset on Binance (USDT) sit a few bps above Coinbase
    (USD) within a narrow band, and their minute returns are strongly correlated."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        b, c = await _minute_closes(sim, http, binance, coinbase, 60)
    bps = (b / c - 1) * 1e4
    assert 0.5 < float(np.median(bps)) < 6, "USDT prints a few bps above USD"
    assert float(np.abs(bps - np.median(bps)).max()) < 8, bps
    corr = float(np.corrcoef(np.diff(np.log(b)), np.diff(np.log(c)))[0, 1])
    assert corr > 0.95, corr


async def test_venues_trade_on_their_own() -> None:
    """Each venue symbol has its own trade ids, counts, sizes and tick size; Coinbase trades about half
    Binance's rate; live Coinbase trades stay close to Binance's."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        end = sim.market.started_ms // MINUTE * MINUTE
        start = end - 10 * MINUTE
        b = await truth(http, sim, symbol="BTCUSDT", start_ms=start, end_ms=end - 1)
        c = await truth(http, sim, venue="coinbase", symbol="BTC-USD", start_ms=start, end_ms=end - 1)
    assert 0.3 < len(c) / len(b) < 0.7
    assert [r["trade_id"] for r in c] == list(range(c[0]["trade_id"], c[0]["trade_id"] + len(c)))
    assert {r["id"] for r in b}.isdisjoint(r["trade_id"] for r in c)
    assert [r["time"] for r in b[:50]] != [r["time_ms"] for r in c[:50]]
    assert [r["qty"] for r in b[:50]] != [r["size"] for r in c[:50]]
    assert all(r["price"].endswith("000000") for r in c), "Coinbase BTC-USD ticks are cents"
    ratio = float(b[-1]["price"]) / float(c[-1]["price"])
    assert abs(ratio - 1) < 15e-4


def test_asset_path_is_prefix_stable_and_continuous() -> None:
    """A path generated further agrees with itself where both exist; values inside a minute join its grid
    points; another seed or asset differs."""
    p = PathParams()
    a, b = AssetPath("BTC", 3, T0, 60000.0, p), AssetPath("BTC", 3, T0, 60000.0, p)
    t = np.arange(T0, T0 + 3000 * MINUTE, MINUTE)
    long = a.log_price(t)
    short = b.log_price(t[:100])
    assert np.array_equal(long[:100], short)
    assert b.log_price(np.array([T0 + 5 * MINUTE - 1]))[0] == pytest.approx(short[5], abs=1e-5)
    inside = b.log_price(np.array([T0 + 7 * MINUTE + 30_000, T0 + 7 * MINUTE + 30_001]))
    assert abs(inside[0] - inside[1]) < 1e-4
    assert not np.array_equal(AssetPath("BTC", 4, T0, 60000.0, p).log_price(t[:100]), short)
    assert not np.array_equal(AssetPath("ETH", 3, T0, 60000.0, p).log_price(t[:100]), short)
    vol = float(np.diff(long).std() * math.sqrt(365 * 24 * 60))
    assert 0.3 < vol < 1.2, vol


def test_reference_basis_and_cross_pairs() -> None:
    """USDT sits 3 bps above USD, USDC 1 bp below; ETHBTC is ETH's path over BTC's."""
    ref = PriceReference(1, T0)
    t = np.array([T0 + 90 * MINUTE])
    usd = ref.log_price(CoinbaseVenue.spec("BTC-USD"), t)[0]
    assert (ref.log_price(synthetic_spec("BTCUSDT"), t)[0] - usd) * 1e4 == pytest.approx(3.0)
    assert (ref.log_price(synthetic_spec("BTCUSDC"), t)[0] - usd) * 1e4 == pytest.approx(-1.0)
    eth_btc = ref.log_price(synthetic_spec("ETHBTC"), t)[0]
    assert eth_btc == pytest.approx(ref.path("ETH").log_price(t)[0] - ref.path("BTC").log_price(t)[0])


def test_market_keys_tapes_by_venue() -> None:
    """Binance tapes keep their names, other venues' are venue-qualified; each venue sees its own specs."""
    m = Market(
        symbols=("BTCUSDT",),
        rate=5.0,
        seed=1,
        history_days=0.01,
        start_ms=T0,
        listings=(Listing("coinbase", CoinbaseVenue.spec("BTC-USD"), 0.5),),
    )
    assert (
        set(m.tapes)
        == {"BTCUSDT", "coinbase:BTC-USD"}
        == {tape_key("binance", "BTCUSDT"), tape_key("coinbase", "BTC-USD")}
    )
    assert list(m.specs_of("binance")) == ["BTCUSDT"]
    assert list(m.specs_of("coinbase")) == ["BTC-USD"]
    emissions = m.tick(T0 + 5000)
    assert {(e.symbol, e.venue) for e in emissions} == {("BTCUSDT", "binance"), ("coinbase:BTC-USD", "coinbase")}


def test_coinbase_specs() -> None:
    """Coinbase products: cents for BTC-USD and ETH-USD, satoshis for sizes; malformed ids are refused."""
    btc = CoinbaseVenue.spec("btc-usd")
    assert (btc.symbol, btc.base, btc.quote, btc.price_dp, btc.qty_dp) == ("BTC-USD", "BTC", "USD", 2, 8)
    assert CoinbaseVenue.spec("ETH-USD").price_dp == 2
    assert CoinbaseVenue.spec("XRP-USD").price_dp == 4
    for bad in ("BTCUSD", "BTC-", "-USD", "A-B-C"):
        with pytest.raises(UnknownSymbolError):
            CoinbaseVenue.spec(bad)


def test_cli_and_config_select_venue_symbols() -> None:
    """--coinbase-symbols picks the products, an empty string none; the registry lists every venue."""
    assert [v.name for v in VENUES] == ["binance", "coinbase", "kraken"]
    assert parse_args(["--coinbase-symbols", "btc-usd,SOL-USD"]).venue_symbols == {"coinbase": ("BTC-USD", "SOL-USD")}
    assert parse_args(["--coinbase-symbols", ""]).venue_symbols == {"coinbase": ()}
    assert parse_args([]).venue_symbols == {}
    with pytest.raises(SystemExit):
        parse_args(["--coinbase-symbols", "BTCUSD"])


async def test_status_and_empty_venue() -> None:
    """Status keeps Binance's tapes under ``symbols`` and lists each venue's under ``venues``; a venue with
    no symbols serves an empty product list; replay mode lists no Coinbase product unless asked."""
    async with Simulator(sim_config(venue_symbols={"coinbase": ("SOL-USD",)})) as sim, aiohttp.ClientSession() as http:
        async with http.get(f"{sim.url}/_sim/status") as r:
            st = await r.json()
        assert set(st["symbols"]) == {"BTCUSDT", "ETHUSDT"}
        assert set(st["venues"]["coinbase"]["symbols"]) == {"SOL-USD"}
        assert st["venues"]["coinbase"]["symbols"]["SOL-USD"]["kind"] == "synthetic"
    async with Simulator(sim_config(venue_symbols={"coinbase": ()})) as sim, aiohttp.ClientSession() as http:
        assert (await cb_get(http, sim, "/products"))[1] == []
    capture = shared_file(CAPTURE)
    async with Simulator(sim_config(replay=(capture,))) as sim:
        assert sim.market.specs_of("coinbase") == {}
