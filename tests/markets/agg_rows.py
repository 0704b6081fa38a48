"""Hand-made Binance aggTrades rows with quiet stretches, in data.binance.vision's CSV layout, and the 1m candles
they must give, worked out here from the rows alone (not with the project's candle code).

The layout (no header): ``agg_trade_id, price, quantity, first_trade_id, last_trade_id, transact_time (ms),
is_buyer_maker, is_best_match`` (reference/exchange-protocols.md, data.binance.vision).
"""

from __future__ import annotations

import random
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.test import Client

from tests.markets.api_requests import get_json

MINUTE = timedelta(minutes=1)
FIRST_ID = 3041249807
NUMBERS = {"open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"}


@dataclass(frozen=True, slots=True)
class Row:
    agg_id: int
    price: Decimal
    qty: Decimal
    first_id: int
    last_id: int
    ms: int
    buyer_maker: bool

    def line(self) -> str:
        maker = "True" if self.buyer_maker else "False"
        return f"{self.agg_id},{self.price:.8f},{self.qty:.8f},{self.first_id},{self.last_id},{self.ms},{maker},True"

    @property
    def minute(self) -> datetime:
        return datetime.fromtimestamp(self.ms // 60_000 * 60, UTC)


def agg_rows(start: datetime, end: datetime, quiet: Iterable[tuple[datetime, int]], seed: int = 17) -> list[Row]:
    """Trades in every minute of ``[start, end)`` except the ``quiet`` stretches (first minute, length in minutes):
    one to four a minute, ids consecutive, times rising (some trades share a millisecond), prices a random walk.
    The first and the last minute trade. Seeded: the same rows every run."""
    rng = random.Random(seed)
    silent = {s + i * MINUTE for s, n in quiet for i in range(n)}
    rows: list[Row] = []
    agg_id, raw_id, cents = FIRST_ID, 3735683259, 6_183_763
    t = start
    while t < end:
        if t not in silent:
            base = int(t.timestamp() * 1000)
            offsets = sorted(rng.randrange(60_000) for _ in range(rng.randint(1, 4)))
            if len(offsets) > 1 and rng.random() < 0.3:
                offsets[1] = offsets[0]  # two aggregate trades in the same millisecond
            for off in offsets:
                cents += rng.randint(-150, 150)
                span = rng.randint(0, 3)
                qty = Decimal(rng.randint(1, 250_000_000)) / Decimal(10**8)
                rows.append(
                    Row(agg_id, Decimal(cents) / 100, qty, raw_id, raw_id + span, base + off, rng.random() < 0.5)
                )
                agg_id, raw_id = agg_id + 1, raw_id + span + 1
        t += MINUTE
    return rows


def write_zip(folder: Path, name: str, rows: Iterable[Row]) -> Path:
    """A data.binance.vision zip: one headerless CSV of the same name."""
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name.removesuffix(".zip") + ".csv", "".join(f"{r.line()}\n" for r in rows))
    return path


def expected_candles(rows: list[Row]) -> dict[datetime, dict[str, Any]]:
    """Every minute from the first row's to the last row's: the OHLCV of its trades (open and close by aggregate
    id, ``trades`` the raw trades covered, taker buys those whose buyer was not the maker), or, with none, flat at
    the previous close with zero volume and ``synthetic`` (the rows' ids are consecutive, so nothing is missing)."""
    by_minute: dict[datetime, list[Row]] = {}
    for r in rows:
        by_minute.setdefault(r.minute, []).append(r)
    out: dict[datetime, dict[str, Any]] = {}
    t, last, close = rows[0].minute, rows[-1].minute, Decimal(0)
    zero = Decimal(0)
    while t <= last:
        its = sorted(by_minute.get(t, []), key=lambda r: r.agg_id)
        if its:
            buys = [r for r in its if not r.buyer_maker]
            close = its[-1].price
            out[t] = {
                "open": its[0].price,
                "high": max(r.price for r in its),
                "low": min(r.price for r in its),
                "close": close,
                "volume": sum((r.qty for r in its), zero),
                "quote_volume": sum((r.price * r.qty for r in its), zero),
                "trades": sum(r.last_id - r.first_id + 1 for r in its),
                "taker_buy_volume": sum((r.qty for r in buys), zero),
                "taker_buy_quote_volume": sum((r.price * r.qty for r in buys), zero),
                "synthetic": False,
            }
        else:
            out[t] = {
                **{k: close for k in ("open", "high", "low", "close")},
                **{k: zero for k in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume")},
                "trades": 0,
                "synthetic": True,
            }
        t += MINUTE
    return out


def served_candles(client: Client, symbol: str, start: datetime, end: datetime) -> dict[datetime, dict[str, Any]]:
    """The 1m candles ``/api/v1/candles?fetch=false`` serves for ``[start, end)``, a day a request, as numbers."""
    out: dict[datetime, dict[str, Any]] = {}
    t = start
    while t < end:
        upto = min(t + timedelta(days=1), end)
        params = {
            "exchange": "binance",
            "symbol": symbol,
            "interval": "1m",
            "start": t.isoformat(),
            "end": upto.isoformat(),
            "fetch": "false",
        }
        for c in get_json(client, "/api/v1/candles", params)["candles"]:
            at = datetime.fromisoformat(c["open_time"].replace("Z", "+00:00"))
            assert at not in out, f"the candle of {at} is served twice"
            out[at] = {k: (Decimal(v) if k in NUMBERS else v) for k, v in c.items() if k != "open_time"}
        t = upto
    return out


def mismatches(served: dict[datetime, dict[str, Any]], expected: dict[datetime, dict[str, Any]]) -> list[str]:
    """What differs between served and expected candles, minute by minute (empty when they agree)."""
    problems = [f"{t}: not served" for t in expected if t not in served]
    problems += [f"{t}: served but not expected" for t in served if t not in expected]
    for t, want in expected.items():
        got = served.get(t)
        if got is not None:
            problems += [f"{t} {k}: served {got[k]}, expected {v}" for k, v in want.items() if got[k] != v]
    return problems
