"""Every exchange's live feed declares how its socket shows it is alive while nothing trades, and every one of
them can be told alive in a quiet market by the stream's watchdog: it answers pings, or it sends heartbeats well
within the default stall limit."""

from __future__ import annotations

import pytest

from markets.exchanges.registry import NAMES, venue
from markets.stream import StreamConfig

SILENT_IN_A_QUIET_MARKET = {"binance"}  # sends nothing at all when nothing trades: only pings tell it is there


@pytest.mark.parametrize("name", NAMES)
def test_every_feed_can_be_told_alive_in_a_quiet_market(name: str) -> None:
    v = venue(name)
    feed = v.stream("ws://unused", tuple(s for s, _, _ in v.default_instruments), "aggTrade")
    liveness = feed.liveness
    stall = StreamConfig(name, ("X",)).stall_seconds
    heartbeats = liveness.heartbeat_seconds is not None and liveness.heartbeat_seconds * 2 <= stall
    assert liveness.answers_pings or heartbeats
    assert (liveness.heartbeat_seconds is None) == (name in SILENT_IN_A_QUIET_MARKET)
