"""Tick ingest: the idempotent ingest service against a bare pymongo ``insert_many`` of the same documents.

Starts its own mongod (single-node replica set, as in development) in a temporary folder, creates
the schema with ``migrate``, then for the same N ticks measures, in one run and alternating:

- baseline: ``insert_many(docs, ordered=False)`` of already-built documents into an empty collection
  with the same unique index (no conversion, no duplicate handling);
- service:  ``markets.services.ticks_ingest`` from ``TradeTick`` records into an empty tick collection
  (document building, Decimal128/Int64 conversion, duplicate handling included);
- service, all duplicates: the same ticks again (every one rejected by the unique index).

Each figure is the median of ``--rounds``; the ratio is service / baseline throughput.

    .venv/bin/python bench/ingest.py [--ticks 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_ticks(n: int) -> list:
    from markets.exchanges.base import Source, TradeTick

    t0 = datetime(2026, 11, 24, tzinfo=UTC)
    return [
        TradeTick(
            "binance",
            "BTCUSDT",
            1_000_000 + i,
            Decimal("61000.01") + Decimal(i % 997) / 100,
            Decimal("0.00100000") * (1 + i % 13),
            "buy" if i % 3 else "sell",
            t0 + timedelta(milliseconds=i * 5),
            t0 + timedelta(milliseconds=i * 5 + 40),
            Source.WS,
            1_000_000 + i,
            1_000_000 + i,
        )
        for i in range(n)
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ticks", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    from tradingsite.devstack import start_mongod

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        mongo = start_mongod(Path(tmp) / "mongo")
        try:
            run(mongo.uri, args.ticks, args.rounds)
        finally:
            mongo.stop()


def run(uri: str, n: int, rounds: int) -> None:
    os.environ["MONGODB_URI"] = uri
    os.environ["DJANGO_SETTINGS_MODULE"] = "tradingsite.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from markets.documents import tick_doc
    from markets.models import Tick
    from markets.services import ticks_ingest

    call_command("migrate", verbosity=0)
    db = connection.database
    ticks = make_ticks(n)
    from markets import documents

    coll = db[Tick._meta.db_table]
    indexes = [ix for ix in coll.list_indexes() if ix["name"] != "_id_"]
    baseline_coll = db["bench_baseline"]

    def fresh(c: object) -> None:
        """Empty, with the tick collection's indexes (the backend's partial unique index included)."""
        c.drop()
        for ix in indexes:
            opts = {k: v for k, v in ix.items() if k not in ("key", "v", "ns")}
            c.create_index(list(ix["key"].items()), **opts)

    base_s, svc_s, dup_s = [], [], []
    for _ in range(rounds):
        fresh(baseline_coll)
        docs = [tick_doc(t) for t in ticks]
        t = time.perf_counter()
        baseline_coll.insert_many(docs, ordered=False)
        base_s.append(time.perf_counter() - t)

        fresh(coll)
        documents._D128.clear()  # no warm conversion cache carried over from the round before
        t = time.perf_counter()
        first = ticks_ingest(ticks=ticks)
        svc_s.append(time.perf_counter() - t)
        assert (first.written, first.duplicates) == (n, 0), first

        t = time.perf_counter()
        again = ticks_ingest(ticks=ticks)
        dup_s.append(time.perf_counter() - t)
        assert (again.written, again.duplicates) == (0, n), again
        assert coll.count_documents({}) == n

    base, svc, dup = (n / statistics.median(x) for x in (base_s, svc_s, dup_s))
    print(f"ticks per round: {n:,}; rounds: {rounds}; mongod single-node replica set, the same indexes on both")
    print(f"  bare insert_many (prebuilt docs) {base:>12,.0f} ticks/s")
    print(f"  ticks_ingest (new ticks)         {svc:>12,.0f} ticks/s   ratio {svc / base:.2f} of bare")
    print(f"  ticks_ingest (all duplicates)    {dup:>12,.0f} ticks/s   ratio {dup / base:.2f} of bare")


if __name__ == "__main__":
    main()
