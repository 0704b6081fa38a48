"""The one rule /readyz and ``feed check`` judge feeds by (pure: fixed times, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from markets.freshness import REPORT_SECONDS, FeedReport, feed_verdict, feed_verdicts

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def report(
    *, state: str = "connected", trade_age: float | None = 0.5, reported: float | None = 0.5, error: str = ""
) -> FeedReport:
    return FeedReport(
        exchange="binance",
        symbol="BTCUSDT",
        state=state,
        last_trade_at=None if trade_age is None else NOW - timedelta(seconds=trade_age),
        updated_at=None if reported is None else NOW - timedelta(seconds=reported),
        last_error=error,
    )


@pytest.mark.parametrize(
    ("feed", "problem"),
    [
        (report(), ""),
        (report(trade_age=10), ""),  # exactly at the limit is still fresh
        (report(state="reconnecting", trade_age=3), ""),  # a short reconnect is no problem
        (report(trade_age=600), ""),  # connected and quiet: the socket is heard, the market is quiet
        (report(state="reconnecting", trade_age=10.5), "reconnecting, no trade for 10.5 s (limit 10 s)"),
        (report(state="reconnecting", trade_age=42), "reconnecting, no trade for 42.0 s (limit 10 s)"),
        (report(trade_age=None), ""),
        (report(state="reconnecting", trade_age=None), "reconnecting, no trade received yet"),
        (report(state="down", error="stopped"), "down (stopped)"),
        (report(state="down"), "down"),
        (
            report(reported=30),
            "no report from its stream for 30.0 s (limit 10 s): is `manage.py stream` running?",
        ),
        (report(reported=None), "no report from its stream ever (limit 10 s): is `manage.py stream` running?"),
    ],
)
def test_verdicts(feed: FeedReport, problem: str) -> None:
    """Fresh when the stream reported lately and the feed is connected (quiet or not) or its last trade is within
    the limit; down, or reconnecting past the limit, is not."""
    verdict = feed_verdict(feed, now=NOW, stall_seconds=10)
    assert verdict.problem == problem
    assert verdict.fresh is (problem == "")


def test_a_short_stall_limit_still_allows_the_streams_report_interval() -> None:
    """The stream rewrites its records about once a second: with a 2 s stall limit a 4 s old report is fine,
    one older than REPORT_SECONDS is not."""
    assert feed_verdict(report(reported=4, trade_age=1), now=NOW, stall_seconds=2).fresh
    assert not feed_verdict(report(reported=REPORT_SECONDS + 1, trade_age=1), now=NOW, stall_seconds=2).fresh


def test_as_dict_and_order() -> None:
    """Verdicts come sorted by (exchange, symbol); the JSON shape names state, ages and the problem."""
    eth = FeedReport("binance", "ETHUSDT", "connected", NOW - timedelta(seconds=1), NOW)
    coinbase = FeedReport("coinbase", "BTC-USD", "connected", None, NOW)
    verdicts = feed_verdicts([coinbase, eth, report()], now=NOW, stall_seconds=10)
    assert [v.name for v in verdicts] == ["binance:BTCUSDT", "binance:ETHUSDT", "coinbase:BTC-USD"]
    assert verdicts[1].as_dict() == {
        "exchange": "binance",
        "symbol": "ETHUSDT",
        "state": "connected",
        "fresh": True,
        "last_trade_at": "2026-12-07T11:59:59+00:00",
        "age_seconds": 1.0,
        "reported_seconds_ago": 0.0,
        "problem": None,
    }
    assert verdicts[2].as_dict()["problem"] is None  # connected, no trade yet: a quiet market


def test_of_reads_naive_times_as_utc() -> None:
    """A raw document's naive datetimes are UTC; a missing state is down."""
    row = {"exchange": "kraken", "symbol": "XBTUSD", "last_trade_at": datetime(2026, 12, 7, 11, 59), "updated_at": None}  # noqa: DTZ001
    feed = FeedReport.of(row)
    assert feed.last_trade_at == datetime(2026, 12, 7, 11, 59, tzinfo=UTC)
    assert feed.state == "down"
    assert feed.last_error == ""
