"""``instruments add --since`` with a real Celery worker running: the command says a worker answered, and the
worker stores the added instrument's trades from then on, exactly as the exchange (the simulator) has them."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from exchangesim.server import Simulator
from markets import intervals as iv
from markets.documents import to_ms
from markets.models import Candle, Tick
from markets.store import collection
from tests.markets.test_instruments_history import truth
from tests.markets.test_tasks import broker, no_market_data  # noqa: F401 (fixtures)
from tests.markets.test_tasks_worker import sim, stored_ids, worker  # noqa: F401 (fixtures)

DONE = re.compile(r"markets\.tasks\.backfill_history\[[^]]+\] succeeded")
SENT = re.compile(r"history from (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC queued for ETHUSDT; 1 Celery worker")


@pytest.mark.usefixtures("no_market_data")
def test_the_worker_stores_the_added_instruments_history(sim: Simulator, worker: Path) -> None:  # noqa: F811
    out = io.StringIO()
    call_command("instruments", "add", "binance", "ETHUSDT", "--since", "3m", "--no-progress", stdout=out)
    sent = SENT.search(out.getvalue())
    assert sent, out.getvalue()
    try:
        deadline = time.monotonic() + 60
        while not DONE.search(worker.read_text()):
            assert time.monotonic() < deadline, f"not filled within 60 s:\n{worker.read_text()[-4000:]}"
            time.sleep(0.2)
        since = datetime.strptime(sent[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        ids = stored_ids("ETHUSDT")
        assert ids, "the simulator trades ten times a second"
        last = collection(Tick).find_one({"symbol": "ETHUSDT"}, sort=[("trade_id", -1)])
        assert last is not None
        expected = truth(sim, "ETHUSDT", to_ms(iv.floor(since, "1m")), to_ms(last["ts"].replace(tzinfo=UTC)))
        assert ids == [e["a"] for e in expected]
        assert Candle.objects.filter(symbol="ETHUSDT", closed=True).exists()
    finally:
        for model in (Tick, Candle):
            collection(model).delete_many({"symbol": "ETHUSDT"})
