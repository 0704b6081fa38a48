"""What the stream sends is paced under the venue's rules: messages on one socket, and new connections to a venue.
The clock is injected (a sleep advances it), so nothing here waits."""

from __future__ import annotations

import pytest

from markets.exchanges.registry import VENUES, venue
from markets.stream.pacing import Pacer, connection_pacer, message_pacer


class Clock:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def most_in_any_window(times: list[float], window: float) -> int:
    """The most events that fall in any half-open span of ``window`` seconds."""
    return max(sum(1 for u in times if t <= u < t + window) for t in times)


async def paced(pacer: Pacer, clock: Clock, events: int) -> list[float]:
    times = []
    for _ in range(events):
        await pacer.wait(clock.sleep)
        times.append(clock.now)
    return times


async def test_subscribe_messages_on_a_binance_socket_stay_under_five_a_second() -> None:
    """60 messages queued at once go out at most 4 in any second and 0.2 (Binance closes a socket past 5 a second,
    pings and pongs counted; the margin is for the network bunching them), and no slower: 15 bursts of 4."""
    clock = Clock()
    pacer = message_pacer(venue("binance").sockets)
    assert pacer.window == pytest.approx(1.2)
    times = await paced(Pacer(pacer.limit, pacer.window, clock=clock), clock, 60)
    assert most_in_any_window(times, 1.2) == 4
    assert times[-1] - times[0] == pytest.approx(14 * 1.2)


async def test_new_binance_connections_stay_under_300_per_5_minutes() -> None:
    """600 connects (a storm of reconnects): never more than the pace in any 5 minutes, which is under Binance's
    300 per IP; the first ones are not held at all."""
    clock = Clock()
    limits = venue("binance").sockets
    pacer = Pacer(limits.connections, limits.window_seconds, clock=clock)
    times = await paced(pacer, clock, 600)
    assert times[limits.connections - 1] == times[0], "the first connects are not held"
    assert most_in_any_window(times, 300.0) <= limits.connections < 300


def test_a_pacer_refuses_what_would_break_its_limit() -> None:
    """``take`` counts an event only within the limit, and ``delay`` says how long until the next one fits."""
    clock = Clock()
    pacer = Pacer(2, 1.0, clock=clock)
    assert pacer.take()
    assert pacer.take()
    assert not pacer.take()
    assert pacer.delay() == pytest.approx(1.0)
    clock.now += 0.4
    assert pacer.delay() == pytest.approx(0.6)
    clock.now += 0.6
    assert pacer.take()


@pytest.mark.parametrize("name", sorted(VENUES))
def test_every_venue_declares_socket_limits(name: str) -> None:
    """Each venue says how many symbols a socket carries, how many messages a second, how many new connections per
    window; Binance's are within its published rules (1,024 streams, under 5 messages/s, under 300 per 5 min)."""
    limits = venue(name).sockets
    assert limits.streams_per_socket >= 1
    assert limits.messages_per_second >= 1
    assert limits.connections >= 1
    if name == "binance":
        assert limits.streams_per_socket == 1024
        assert limits.messages_per_second < 5
        assert limits.connections / limits.window_seconds < 300 / 300.0


def test_the_connection_pacer_is_one_per_venue_in_a_process() -> None:
    """Every stream of a venue in one process shares its connection pacer (the venue's limit is per IP)."""
    limits = venue("kraken").sockets
    assert connection_pacer("kraken", limits) is connection_pacer("kraken", limits)
    assert connection_pacer("kraken", limits) is not connection_pacer("coinbase", venue("coinbase").sockets)


def test_a_pacer_needs_a_positive_limit() -> None:
    with pytest.raises(ValueError, match="positive limit"):
        Pacer(0, 1.0)
