"""``manage.py backfill --what trades`` taking whole UTC days from Binance's bulk files and the rest from REST, against
the simulator (REST) and a file host of the test's own serving files made from the simulator's truth."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
from django.core.management import CommandError, call_command

from exchangesim.server import Simulator, running_in_thread
from markets.exchanges.binance_vision_download import daily_url
from markets.models import Tick
from markets.store import collection
from tests.conftest import sim_config
from tests.markets.test_backfill import summary_figures
from tests.markets.test_bulk_download import FileHost

SYMBOL = "BTCUSDT"


@pytest.fixture
def market(settings: Any) -> Iterator[tuple[Simulator, FileHost]]:
    """A simulator at 0.1 trades/s with five days of history as Binance's REST, and an empty file host as its bulk
    files."""
    with running_in_thread(sim_config(rate=0.1, history_days=5.0)) as sim, FileHost() as host:
        settings.BINANCE_REST_URL = sim.url
        settings.BINANCE_DATA_URL = host.url
        yield sim, host


def at(day: date, hours: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hours)


def truth(sim: Simulator, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The simulator's aggregate trades with exchange time in ``[start, end)``."""
    params = {"symbol": SYMBOL, "kind": "aggTrades", "start_ms": int(start.timestamp() * 1000)}
    resp = requests.get(
        f"{sim.url}/_sim/truth", timeout=60, params={**params, "end_ms": int(end.timestamp() * 1000) - 1}
    )
    resp.raise_for_status()
    return [json.loads(line) for line in resp.text.splitlines() if line]


def publish_day(sim: Simulator, host: FileHost, day: date, shift: int = 0, **kw: Any) -> list[dict[str, Any]]:
    """The day's truth published as its aggTrades file (Binance's columns; ids moved by ``shift``); its trades."""
    rows = truth(sim, at(day), at(day + timedelta(days=1)))
    csv = [f"{r['a'] + shift},{r['p']},{r['q']},{r['f']},{r['l']},{r['T']},{r['m']},True" for r in rows]
    host.publish(daily_url(host.url, SYMBOL, day), csv, **kw)
    return rows


def backfill(*args: str, bar: io.StringIO | None = None) -> dict[str, int]:
    """The summary's figures; with ``bar``, the progress bar is drawn there."""
    out, quiet = io.StringIO(), () if bar is not None else ("--no-progress",)
    call_command("backfill", "--what", "trades", "--symbol", SYMBOL, *args, *quiet, stdout=out, stderr=bar)
    print(out.getvalue())
    return summary_figures(out.getvalue())


def stored() -> list[dict[str, Any]]:
    return list(collection(Tick).find({"symbol": SYMBOL}, {"_id": 0, "trade_id": 1, "source": 1}).sort("trade_id", 1))


def the_range() -> tuple[date, date, tuple[str, ...]]:
    """Two whole days (three and two days ago) with an hour either side: the older day is not published."""
    today = datetime.now(UTC).date()
    old, day = today - timedelta(days=3), today - timedelta(days=2)
    args = ("--start", at(old, -1).isoformat(), "--end", at(day, 25).isoformat())
    return old, day, args


@pytest.mark.django_db
def test_published_days_come_from_files_and_the_rest_from_rest_every_id_once(
    market: tuple[Simulator, FileHost],
) -> None:
    """The published day is read from its file, the unpublished one and the hours around them from REST by id: the
    stored ids are the truth's, each once and contiguous across every file/REST boundary; the minutes all get
    candles. A rerun asks for no file and fetches nothing."""
    sim, host = market
    old, day, args = the_range()
    from_file = publish_day(sim, host, day)
    want = [r["a"] for r in truth(sim, at(old, -1), at(day, 25))]

    bar = io.StringIO()
    got = backfill(*args, bar=bar)
    docs = stored()
    assert [int(d["trade_id"]) for d in docs] == want == list(range(want[0], want[-1] + 1))
    assert {int(d["trade_id"]) for d in docs if d["source"] == "import"} == {r["a"] for r in from_file}
    assert got["from files"] == len(from_file)
    assert got["fetched"] == len(want) - len(from_file)
    assert (got["newly stored"], got["still missing"], got["1m candles"]) == (len(want), 0, 50 * 60)
    assert [p.rsplit("/", 1)[-1] for p in host.zips_asked()] == [f"{SYMBOL}-aggTrades-{day}.zip"]
    assert re.search(rf"{SYMBOL}-aggTrades-{day}\.zip: [\d.]+ of [\d.]+ MB", bar.getvalue())  # the download
    assert re.search(r"100%\|#+\| (\S+)/\1 ", bar.getvalue())  # every trade counted on the bar

    asked = len(host.log)
    again = backfill(*args)
    assert (again["fetched"], again["newly stored"], again["already present"]) == (0, 0, len(want))
    assert len(host.log) == asked


@pytest.mark.django_db
def test_a_file_whose_checksum_differs_is_refused_and_nothing_of_it_stored(
    market: tuple[Simulator, FileHost],
) -> None:
    """A CHECKSUM that does not match the zip (twice): the backfill of the day stops naming the file and both digests,
    with no trade stored; ``--source rest`` then fills the day exactly without asking for a file."""
    sim, host = market
    day = datetime.now(UTC).date() - timedelta(days=2)
    args = ("--start", at(day).isoformat(), "--end", at(day, 24).isoformat())
    publish_day(sim, host, day, checksum="0" * 64)
    with pytest.raises(
        CommandError, match=rf"{SYMBOL}-aggTrades-{day}\.zip: SHA-256 [0-9a-f]{{64}} differs .* {'0' * 64}"
    ):
        backfill(*args)
    assert stored() == []

    asked = len(host.log)
    got = backfill(*args, "--source", "rest")
    want = [r["a"] for r in truth(sim, at(day), at(day, 24))]
    assert [int(d["trade_id"]) for d in stored()] == want
    assert got["fetched"] == len(want)
    assert "from files" not in got
    assert len(host.log) == asked


@pytest.mark.django_db
def test_a_file_of_another_exchanges_ids_is_refused(market: tuple[Simulator, FileHost]) -> None:
    """Files whose ids are not the REST exchange's (BINANCE_DATA_URL at the real Binance, REST at the simulator):
    refused naming the file and both settings, nothing stored."""
    sim, host = market
    day = datetime.now(UTC).date() - timedelta(days=2)
    publish_day(sim, host, day, shift=3_000_000_000)
    with pytest.raises(
        CommandError,
        match=r"aggTrades-.*\.zip: aggregate trade id [\d,]+ is not among .* nothing stored .*BINANCE_DATA_URL",
    ):
        backfill("--start", at(day).isoformat(), "--end", at(day, 24).isoformat())
    assert stored() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--what", "trades", "--exchange", "coinbase", "--source", "files"), "coinbase publishes no bulk files"),
        (("--what", "candles", "--source", "rest"), "--source applies to --what trades"),
    ],
)
def test_a_source_that_does_not_apply_is_refused(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("backfill", "--symbol", SYMBOL, "--start", "2h ago", *args, "--no-progress")


@pytest.mark.slow
@pytest.mark.django_db
def test_a_whole_ended_month_comes_from_the_simulators_monthly_file(settings: Any) -> None:
    """Last month, whole, from the simulator's own data.binance.vision copy: one monthly file, no trade page by REST,
    the stored ids the truth's."""
    config = sim_config(
        symbols=(SYMBOL,), venue_symbols={"coinbase": (), "kraken": ()}, history_days=62, rate=0.002, vision_delay=0
    )
    with running_in_thread(config) as sim:
        settings.BINANCE_REST_URL = settings.BINANCE_DATA_URL = sim.url
        this_month = datetime.now(UTC).date().replace(day=1)
        last_month = (this_month - timedelta(days=1)).replace(day=1)
        got = backfill("--start", at(last_month).isoformat(), "--end", at(this_month).isoformat())
        want = [r["a"] for r in truth(sim, at(last_month), at(this_month))]
        venue = requests.get(f"{sim.url}/_sim/status", timeout=10).json()["venues"]["binance"]
    assert [int(d["trade_id"]) for d in stored()] == want
    assert (got["from files"], got["fetched"], got["still missing"]) == (len(want), 0, 0)
    assert venue["vision"]["files_built"] == 1  # the monthly file, no daily one
    assert venue["requests"].get("/api/v3/aggTrades", 0) <= 2  # the range's first trade and the first after it
