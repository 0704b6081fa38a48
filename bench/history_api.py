"""The history API's reads against a bare pymongo read of the same documents (issue 17, item 1).

Starts its own mongod (single-node replica set) and redis-server in a temporary folder, migrates, and stores one
instrument's history the way the project stores it: the instrument by ``instruments_store`` (Binance's BTCUSDT
filters, tick 0.01, step 0.00001), 31 days of 1m candles by ``candles_upsert`` (a seeded random walk, numbers with
the exchange's 8 decimals as klines carry them, one minute in 40 quiet: flat, zero-volume, synthetic) and
``--ticks`` ticks by ``ticks_ingest``. Then, for each row, ``--repeat`` times after ``--warmup`` (alternating, so
both sides see the same machine):

- the endpoint, in-process through Django (``django.test.Client``: URL routing, middleware, DRF, the view, the JSON
  rendering; the whole body is produced), anonymous with throttling off and ``fetch=false``;
- the baseline: ``list(coll.find(filter).sort(...))`` of the documents the answer carries, no projection. For 1m
  candles and ticks those are the stored ones (the page of ticks: the same ``limit``). For 5m and 1h the answer's
  candles are aggregates; whatever the code under test does, the baseline reads them as stored documents of the
  same shape from a collection of their own (built once here from the 1m candles, same index), so the figure is
  the cost of reading the answer's documents and the same in every version of the code.

Printed: p50 and p99 of each side in ms and the ratios endpoint/baseline (p50/p50, p99/p99). No assertion on time.

    .venv/bin/python bench/history_api.py [--repeat 50] [--warmup 5] [--ticks 20000] [--days 31]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXCHANGE, SYMBOL = "binance", "BTCUSDT"
END = datetime(2026, 11, 1, tzinfo=UTC)  # the history ends here: a past day, so every candle of it is closed
MINUTE = timedelta(minutes=1)
BASELINE = "bench_answer_candles"  # the aggregated answers as stored documents, for the baseline


def progress(msg: str) -> None:  # on stderr: stdout is the table
    print(msg, file=sys.stderr, flush=True)


def pct(xs: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``xs``, nearest rank."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def walk_candles(days: int, seed: int) -> list[Any]:
    """``days`` days of 1m candles before END: a seeded random walk, 8-decimal numbers as Binance's klines carry
    them, every 40th minute quiet (flat at the last close, zero volume, synthetic)."""
    from markets.types import CandleBar

    rng = random.Random(seed)
    price = Decimal("60000.00")
    out = []
    t = END - timedelta(days=days)
    cent, q8 = Decimal("0.01"), Decimal("0.00000001")
    i = 0
    while t < END:
        close_time = t + MINUTE - timedelta(milliseconds=1)
        if i % 40 == 39:
            z = Decimal("0E-8")
            p = price.quantize(q8)
            out.append(
                CandleBar(EXCHANGE, SYMBOL, "1m", t, close_time, p, p, p, p, z, z, 0, z, z, "trades", True, True)
            )
        else:
            o = price
            c = (price + Decimal(rng.randint(-3000, 3000)) * cent).quantize(cent)
            h = max(o, c) + Decimal(rng.randint(0, 800)) * cent
            lo = min(o, c) - Decimal(rng.randint(0, 800)) * cent
            vol = (Decimal(rng.randint(1, 5_000_000)) * Decimal("0.00001")).quantize(q8)
            taker = (vol * Decimal(rng.randint(0, 100)) / 100).quantize(Decimal("0.00001")).quantize(q8)
            out.append(
                CandleBar(
                    *(EXCHANGE, SYMBOL, "1m", t, close_time),
                    *(x.quantize(q8) for x in (o, h, lo, c)),
                    vol,
                    (vol * c).quantize(q8),
                    rng.randint(1, 900),
                    taker,
                    (taker * c).quantize(q8),
                    "exchange",
                )
            )
            price = c
        t += MINUTE
        i += 1
    return out


def walk_ticks(n: int, seed: int) -> list[Any]:
    """``n`` consecutive BTCUSDT ticks ending shortly before END, 8-decimal numbers as Binance sends them."""
    from markets.types import Source, TradeTick

    rng = random.Random(seed)
    t0 = END - timedelta(hours=6)
    price = 6_000_000
    out = []
    for i in range(n):
        price += rng.randint(-5, 5)
        ts = t0 + timedelta(milliseconds=i * 97)
        qty = Decimal(rng.randint(1, 200_000)) * Decimal("0.00001")
        out.append(
            TradeTick(
                *(EXCHANGE, SYMBOL, 700_000_000 + i),
                (Decimal(price) / 100).quantize(Decimal("0.00000001")),
                qty.quantize(Decimal("0.00000001")),
                "buy" if rng.random() < 0.5 else "sell",
                ts,
                ts + timedelta(milliseconds=40 + i % 37),
                Source.WS,
                *(900_000_000 + 2 * i, 900_000_001 + 2 * i),
            )
        )
    return out


def store(days: int, n_ticks: int, seed: int) -> None:
    """The instrument, the candles and the ticks, through the project's storage functions."""
    from markets.services import candles_upsert, instruments_store, ticks_ingest
    from markets.types import InstrumentInfo

    instruments_store(
        instruments=[
            InstrumentInfo(
                *(EXCHANGE, SYMBOL, "BTC-USDT", "BTC", "USDT", "TRADING"),
                tick_size=Decimal("0.01000000"),
                step_size=Decimal("0.00001000"),
                min_notional=Decimal("5.00000000"),
            )
        ],
        streamed=False,
    )
    candles = walk_candles(days, seed)
    t = time.perf_counter()
    for k in range(0, len(candles), 5000):
        candles_upsert(candles=candles[k : k + 5000])
    progress(f"stored {len(candles):,} 1m candles in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    ticks_ingest(ticks=walk_ticks(n_ticks, seed))
    progress(f"stored {n_ticks:,} ticks in {time.perf_counter() - t:.1f} s")


def answer_docs(db: Any, candles: str, interval: str, lo: datetime, hi: datetime) -> None:
    """Store the ``interval`` candles of ``[lo, hi)`` aggregated from the 1m ones, as candle documents of their own
    (the baseline's documents for an aggregated answer)."""
    unit, size = {"5m": ("minute", 5), "1h": ("hour", 1)}[interval]
    key = {"exchange": EXCHANGE, "symbol": SYMBOL}
    pipeline = [
        {"$match": {**key, "interval": "1m", "open_time": {"$gte": lo, "$lt": hi}}},
        {"$sort": {"open_time": 1}},
        {
            "$group": {
                "_id": {"$dateTrunc": {"date": "$open_time", "unit": unit, "binSize": size}},
                **{f: {op: f"${f}"} for f, op in (("open", "$first"), ("high", "$max"), ("low", "$min"))},
                "close": {"$last": "$close"},
                **{
                    f: {"$sum": f"${f}"}
                    for f in ("volume", "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume")
                },
                "close_time": {"$last": "$close_time"},
                "source": {"$first": "$source"},
                "closed": {"$min": "$closed"},
                "synthetic": {"$min": "$synthetic"},
            }
        },
        {"$set": {**key, "interval": interval, "open_time": "$_id"}},
        {"$unset": "_id"},
        {"$merge": {"into": BASELINE}},
    ]
    db[candles].aggregate(pipeline)


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=50, help="timed requests per row and side")
    p.add_argument("--warmup", type=int, default=5, help="untimed requests per row and side first")
    p.add_argument("--ticks", type=int, default=20_000, help="stored ticks (the pages read are 1,000 and 5,000)")
    p.add_argument("--days", type=int, default=31, help="days of 1m candles stored (the rows read up to 30)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    from tradingsite.devstack import start_mongod, start_redis

    with tempfile.TemporaryDirectory(prefix="bench-history-api-") as tmp:
        mongo = start_mongod(Path(tmp) / "mongo")
        redis = start_redis(Path(tmp) / "redis")
        try:
            run(mongo.uri, redis.uri, args)
        finally:
            mongo.stop()
            redis.stop()


def run(mongo_uri: str, redis_uri: str, args: argparse.Namespace) -> None:
    os.environ.update(
        MONGODB_URI=mongo_uri,
        REDIS_URL=redis_uri,
        DJANGO_SETTINGS_MODULE="tradingsite.settings",
        API_THROTTLE_ANON="none",  # hundreds of requests from one address: the limit is not what is measured
        DJANGO_DEBUG="false",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from markets.models import Candle, Tick

    call_command("migrate", verbosity=0)
    store(args.days, args.ticks, args.seed)
    db = connection.database
    candles, ticks = Candle._meta.db_table, Tick._meta.db_table
    db[BASELINE].create_index([("exchange", 1), ("symbol", 1), ("interval", 1), ("open_time", 1)])
    client = Client(HTTP_HOST="localhost")
    key = {"exchange": EXCHANGE, "symbol": SYMBOL}
    first_id = 700_000_000 + max(0, min(args.ticks // 4, args.ticks - 5000))

    def candle_row(name: str, interval: str, days: int) -> tuple[str, dict[str, str], Callable[[], object], int]:
        lo, hi = END - timedelta(days=days), END
        coll = candles
        if interval != "1m":
            answer_docs(db, candles, interval, lo, hi)
            coll = BASELINE
        query = {**key, "interval": interval, "open_time": {"$gte": lo, "$lt": hi}}
        n = db[coll].count_documents(query)
        params = {**key, "interval": interval, "start": lo.isoformat(), "end": hi.isoformat(), "fetch": "false"}
        return name, params, lambda: list(db[coll].find(query).sort("open_time", 1)), n

    def tick_row(limit: int) -> tuple[str, dict[str, str], Callable[[], object], int]:
        query = {**key, "trade_id": {"$gte": first_id}}
        params = {**key, "from_id": str(first_id), "limit": str(limit)}
        return (
            f"ticks page of {limit:,}",
            params,
            lambda: list(db[ticks].find(query).sort("trade_id", 1).limit(limit)),
            limit,
        )

    rows = [
        ("/api/v1/candles", candle_row("candles 1m, 1 day", "1m", 1)),
        ("/api/v1/candles", candle_row("candles 1h, 30 days", "1h", 30)),
        ("/api/v1/candles", candle_row("candles 5m, 7 days", "5m", 7)),
        ("/api/v1/ticks", tick_row(1000)),
        ("/api/v1/ticks", tick_row(5000)),
    ]
    results = []
    for path, (name, params, baseline, n) in rows:
        progress(f"{name}: {args.warmup} + {args.repeat} requests")

        def endpoint(path: str = path, params: dict[str, str] = params, n: int = n) -> None:
            response = client.get(path, params)
            assert response.status_code == 200, response.content[:500]
            body = response.json()
            got = len(body["candles"] if "candles" in body else body["results"])
            assert got == n, f"{path} {params}: {got} rows, the baseline reads {n}"

        for _ in range(args.warmup):
            endpoint()
            baseline()
        api_s, base_s = [], []
        for _ in range(args.repeat):
            api_s.append(timed(lambda path=path, params=params: client.get(path, params).content))
            base_s.append(timed(baseline))
        results.append((name, n, api_s, base_s))

    print(
        f"history API against a bare pymongo read of the same documents: {EXCHANGE} {SYMBOL}, {args.days} days of 1m "
        f"candles and {args.ticks:,} ticks stored; {args.repeat} requests a row after {args.warmup} warm-up; "
        "in-process Django client, fetch=false"
    )
    head = f"{'row':<22} {'docs':>6} {'API p50':>9} {'API p99':>9} {'bare p50':>9} {'bare p99':>9}"
    print(f"{head} {'p50 ratio':>9} {'p99 ratio':>9}")
    for name, n, api_s, base_s in results:
        a50, a99, b50, b99 = (pct(xs, q) * 1e3 for xs in (api_s, base_s) for q in (0.5, 0.99))
        print(
            f"{name:<22} {n:>6,} {a50:>7.1f}ms {a99:>7.1f}ms {b50:>7.1f}ms {b99:>7.1f}ms "
            f"{a50 / b50:>8.2f}x {a99 / b99:>8.2f}x"
        )


if __name__ == "__main__":
    main()
