"""The same 10,000 ticks through every write path are stored once: REST backfill, the stream's ingest,
a bulk-file import, the ORM and a rerun of the backfill (ARCHITECTURE §5's partial-index trap)."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from exchangesim.server import Simulator, running_in_thread
from markets.backfill import trade_ids_fill
from markets.exchanges.base import Source
from markets.exchanges.binance import BinanceRest
from markets.imports import binance_files_import
from markets.models import Tick
from markets.selectors import tick_page
from markets.services import ticks_ingest
from tests.conftest import sim_config

N = 10_000


@pytest.fixture
def sim(settings: Any) -> Iterator[Simulator]:
    with running_in_thread(sim_config(rate=10.0)) as s:
        settings.BINANCE_REST_URL = s.url
        yield s


def ids_stored_more_than_once() -> list[Any]:
    coll = connection.database[Tick._meta.db_table]
    return list(
        coll.aggregate(
            [
                {"$group": {"_id": {"e": "$exchange", "s": "$symbol", "t": "$trade_id"}, "n": {"$sum": 1}}},
                {"$match": {"n": {"$gt": 1}}},
            ]
        )
    )


@pytest.mark.django_db
def test_ten_thousand_ticks_through_every_write_path_are_stored_once(sim: Simulator, tmp_path: Path) -> None:
    """REST backfill stores 10,000; the same ticks through the live-ingest service, an aggTrades file
    import, the ORM and a backfill of their time range add nothing; each id is stored exactly once."""
    adapter = BinanceRest(sim.url)
    start = datetime.now(UTC) - timedelta(hours=3)
    first = adapter.trades_by_time("BTCUSDT", start, start + timedelta(minutes=5), limit=1)[0].trade_id
    last = first + N - 1

    fill = trade_ids_fill(adapter=adapter, exchange="binance", symbol="BTCUSDT", first_id=first, last_id=last)
    assert (fill.fetched, fill.written, fill.unreturned) == (N, N, [])

    page = tick_page(exchange="binance", symbol="BTCUSDT", from_id=first, to_id=last, limit=5000)
    stored = (
        page.ticks
        + tick_page(exchange="binance", symbol="BTCUSDT", from_id=page.next_from_id, to_id=last, limit=5000).ticks
    )
    assert [t.trade_id for t in stored] == list(range(first, last + 1))

    as_live = [dataclasses.replace(t, source=Source.WS, received_at=datetime.now(UTC)) for t in stored]
    again = ticks_ingest(ticks=as_live)
    assert (again.written, again.duplicates) == (0, N)

    path = tmp_path / "BTCUSDT-aggTrades-2026-11-24.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        for t in stored:
            w.writerow(
                [
                    t.trade_id,
                    t.price,
                    t.qty,
                    t.first_trade_id,
                    t.last_trade_id,
                    int(t.ts.timestamp() * 1000),
                    t.taker_side == "sell",
                    True,
                ]
            )
    (summary,) = binance_files_import(paths=[path])
    assert (summary.rows, summary.written, summary.already_present) == (N, 0, N)

    t = stored[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        Tick.objects.create(
            exchange=t.exchange,
            symbol=t.symbol,
            trade_id=t.trade_id,
            price=t.price,
            qty=t.qty,
            taker_side=t.taker_side,
            ts=t.ts,
            received_at=t.received_at,
            source="ws",
            first_trade_id=t.first_trade_id,
            last_trade_id=t.last_trade_id,
        )

    # Their time range ends where the next trade begins: it may share the last one's millisecond (about one in
    # 200 aggregate trades does), and a range through that millisecond holds it too.
    (after,) = adapter.trades_from_id("BTCUSDT", last + 1, limit=1)
    out = io.StringIO()
    call_command(
        "backfill",
        "--what",
        "trades",
        "--symbol",
        "BTCUSDT",
        "--start",
        stored[0].ts.isoformat(),
        "--end",
        after.ts.isoformat(),
        "--no-progress",
        stdout=out,
    )
    newly = re.search(r"newly stored\s+([0-9,]+)", out.getvalue())
    assert newly is not None
    assert newly[1] == "0"

    assert Tick.objects.filter(symbol="BTCUSDT", trade_id__gte=first, trade_id__lte=last).count() == N
    assert ids_stored_more_than_once() == []
