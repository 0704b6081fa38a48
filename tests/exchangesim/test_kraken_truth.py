"""The Kraken venue's market: truth by any spelling of a pair, and Kraken's BTC moving with Binance's."""

from __future__ import annotations

import numpy as np

from exchangesim.engine.aggregate import MINUTE
from tests.exchangesim.kraken_client import Kr, kr_get
from tests.exchangesim.test_coinbase import truth


async def test_truth_by_any_spelling_and_status(kr: Kr) -> None:
    """/_sim/truth takes the altname as well as XBT/USD; status lists the venue's pairs by their names."""
    sim, http = kr
    end = sim.market.started_ms - 10_000
    a = await truth(http, sim, venue="kraken", symbol="XBT/USD", start_ms=end - 5000, end_ms=end)
    b = await truth(http, sim, venue="kraken", symbol="XBTUSD", start_ms=end - 5000, end_ms=end)
    assert a == b
    assert a
    assert set(a[0]) == {
        "trade_id",
        "price",
        "qty",
        "time",
        "side",
        "ord_type",
        "misc",
        "time_ns",
        "time_ms",
        "taker_side",
    }
    async with http.get(f"{sim.url}/_sim/status") as r:
        st = await r.json()
    assert set(st["venues"]["kraken"]["symbols"]) == {"XBT/USD", "ETH/USD"}


async def test_kraken_btc_moves_with_binance_btc(kr: Kr) -> None:
    """Minute closes of XBT/USD on Kraken and BTCUSDT on Binance over the last 12 hours: USDT a few bps above
    USD within a narrow band, minute returns strongly correlated."""
    sim, http = kr
    _, body = await kr_get(http, sim, "OHLC", pair="XBTUSD")
    kraken = {r[0] * 1000: float(r[4]) for r in body["result"]["XXBTZUSD"][:-1] if r[7] > 0}
    start = min(kraken)
    binance: dict[int, float] = {}
    for s in range(start, max(kraken) + 1, 1000 * MINUTE):
        async with http.get(
            f"{sim.url}/api/v3/klines",
            params={"symbol": "BTCUSDT", "interval": "1m", "startTime": str(s), "limit": "1000"},
        ) as r:
            binance.update({k[0]: float(k[4]) for k in await r.json()})
    common = sorted(set(kraken) & set(binance))
    assert len(common) > 600
    k, b = np.array([kraken[t] for t in common]), np.array([binance[t] for t in common])
    bps = (b / k - 1) * 1e4
    assert 0.5 < float(np.median(bps)) < 6, "USDT prints a few bps above USD"
    assert float(np.abs(bps - np.median(bps)).max()) < 10
    assert float(np.corrcoef(np.diff(np.log(b)), np.diff(np.log(k)))[0, 1]) > 0.95
