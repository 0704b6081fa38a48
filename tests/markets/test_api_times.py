"""One time grammar for the commands and the API (``markets.times.parse_time``): ``now`` and ``<n>m|h|d ago``
work on every API time parameter, ``now`` is read once per request, and the API's bounds and hints keep working.
The clock is pinned: nothing here depends on today's date or the time of day."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from django.http import QueryDict
from django.test import Client

from markets.api import params
from markets.api.params import CandlesParams, TicksParams
from markets.services import candles_upsert, ticks_ingest
from markets.times import parse_range, parse_time
from tests.markets.api_requests import CANDLES, T0, TICKS, get_json
from tests.markets.test_api import candles, ticks

NOW = T0 + timedelta(hours=2, microseconds=250)  # 02:00:00.000250, inside the test day
NOW_MS = NOW + timedelta(microseconds=750)  # rounded up to the whole millisecond


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW_MS),
        ("NOW", NOW_MS),
        ("6h ago", NOW_MS - timedelta(hours=6)),
        ("90m ago", NOW_MS - timedelta(minutes=90)),
        ("7d ago", NOW_MS - timedelta(days=7)),
        ("2025-06-02T00:00:00.000001Z", T0 + timedelta(milliseconds=1)),  # MongoDB keeps ms: rounded up
        ("1748822400000", T0),
        ("2025-06-02T02:00:00+02:00", T0),
        ("2025-06-02 00:00", T0),
    ],
)
def test_the_forms_of_the_grammar(text: str, expected: datetime) -> None:
    """ISO-8601, epoch milliseconds, now and ago, all to UTC, rounded up to the millisecond."""
    assert parse_time(text, now=NOW) == expected
    assert parse_time(text, now=NOW, ahead=params.MAX_AHEAD) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("yesterday", "'yesterday' is neither ISO-8601"),
        ("2025-06-02T00:00:00 01:00", "must be sent as %2B (2025-06-02T00:00:00+01:00)"),
        ("-1", "-1 is a negative epoch"),
        ("1748822400", "looks like epoch seconds: times are epoch milliseconds (1748822400000)"),
        ("1748822400000000", "looks like epoch microseconds: times are epoch milliseconds (1748822400000)"),
        ("2008-12-31T23:59:59Z", "before 2009-01-01T00:00:00.000Z, the earliest time accepted"),
        ("9999999d ago", "neither ISO-8601"),
        ("999999d ago", "before 2009-01-01T00:00:00.000Z"),
        ("2027-06-03T00:00:00Z", "more than 366 days after now; the latest time accepted is 2026-06-03T02:00:00.000Z"),
        ("", "is empty"),
    ],
)
def test_refusals_say_why(text: str, says: str) -> None:
    """Each refused time says why and, where it can, what was meant."""
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_time(text, now=NOW, ahead=params.MAX_AHEAD)


def test_the_commands_bound_is_fixed_and_their_range_reads_now_once() -> None:
    """Without ``ahead`` (the commands) the latest time is 2100; ``--start 2h ago --end now`` is two hours."""
    assert parse_time("2099-01-01T00:00:00Z", now=NOW) == datetime(2099, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match=re.escape("after 2100-01-01T00:00:00.000Z")):
        parse_time("2100-01-02", now=NOW)
    assert parse_range("2h ago", "now", now=NOW) == (NOW_MS - timedelta(hours=2), NOW_MS)


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
def test_params_read_now_from_their_context() -> None:
    """Both times of one query use the same ``now``: the one in the context, else the clock read once."""
    query = QueryDict("symbol=BTCUSDT&start=2h%20ago&end=now&fetch=false")
    p = CandlesParams(data=query, context={"now": NOW})
    assert p.is_valid(), p.errors
    assert (p.validated_data["start"], p.validated_data["end"]) == (NOW_MS - timedelta(hours=2), NOW_MS)


@pytest.fixture
def ticking_clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """A clock that moves one second each time it is read, from NOW; the list holds the readings."""
    readings: list[datetime] = []
    seconds = count()

    def clock() -> datetime:
        readings.append(NOW + timedelta(seconds=next(seconds)))
        return readings[-1]

    monkeypatch.setattr(params, "clock", clock)
    return readings


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
def test_candles_and_ticks_take_now_and_ago(client: Client, ticking_clock: list[datetime]) -> None:
    """``start=2h ago&end=now`` on /api/v1/candles is exactly the two hours before the (single) reading of the
    clock, and answers what the same range in ISO does; /api/v1/ticks takes the same forms."""
    candles_upsert(candles=candles(120))
    ticks_ingest(ticks=ticks(50))
    body = get_json(client, "/api/v1/candles", {**CANDLES, "start": "2h ago", "end": "now"})
    assert len(ticking_clock) == 1
    assert (body["start"], body["end"]) == ("2025-06-02T00:00:00.001Z", "2025-06-02T02:00:00.001Z")
    assert len(body["candles"]) == 119  # the minute opening at 00:00:00.000 is before start
    iso = get_json(client, "/api/v1/candles", {**CANDLES, "start": body["start"], "end": body["end"]})
    assert iso["candles"] == body["candles"]
    assert len(ticking_clock) == 2  # once per request: ISO times are checked against now + 366 days
    page = get_json(client, "/api/v1/ticks", {**TICKS, "start": "3h ago", "end": "now"})
    assert len(ticking_clock) == 3
    assert [t["trade_id"] for t in page["results"]] == list(range(1, 51))
    page = get_json(client, "/api/v1/ticks", {**TICKS, "start": "1m ago"})
    assert page["results"] == []


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
def test_an_ago_time_refused_names_its_field(client: Client, ticking_clock: list[datetime]) -> None:
    """A refused time is a 400 naming the field; an ago range the wrong way round is named like any other."""
    body = get_json(client, "/api/v1/candles", {**CANDLES, "start": "now", "end": "2h ago"}, status=400)
    assert body["fields"]["start"][0].startswith("must be before end (start=2025-06-02T02:00:00.001Z")
    body = get_json(client, "/api/v1/ticks", {**TICKS, "start": "in 2h"}, status=400)
    assert "'in 2h' is neither ISO-8601" in body["fields"]["start"][0]


def test_the_schema_documents_the_grammar() -> None:
    """The OpenAPI description of every time parameter names now and ago."""
    assert "now, or <n>m|h|d ago" in params.TIME_HELP
    assert TicksParams().fields["start"].help_text.endswith(params.TIME_HELP)
