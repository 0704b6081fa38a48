"""The venue limiter: a 429/418's Retry-After of any length holds every requester of the venue, in this process and,
through the shared store, in the others of the host. Pure: the clock is injected and sleeping advances it; the
store is a dict."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markets.exchanges import limiter as limiter_module
from markets.exchanges.errors import ExchangeUnavailable, RateLimited
from markets.exchanges.limiter import DEFAULT_BAN_SECONDS, MARGIN, VenueLimiter, at_utc, venue_key
from markets.exchanges.retry import RetryPolicy, call_with_retry

START = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
KEY = "binance@127.0.0.1:9900"


class Clock:
    """Unix time that moves only when a requester sleeps."""

    def __init__(self, t: float = START) -> None:
        self.t = t
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


class Store:
    """A SharedWaits in a dict, counting its reads; ``down`` answers like an unreachable store."""

    def __init__(self) -> None:
        self.until: dict[str, float] = {}
        self.reads = 0
        self.down = False

    def read(self, key: str) -> float | None:
        self.reads += 1
        return None if self.down else self.until.get(key)

    def extend(self, key: str, until: float) -> None:
        if not self.down and until > self.until.get(key, 0.0):
            self.until[key] = until

    def forget(self, key: str) -> None:
        self.until.pop(key, None)


def make(clock: Clock, store: Store | None = None, *, refresh: float = 0.1) -> VenueLimiter:
    return VenueLimiter("binance", KEY, shared=lambda: store, clock=clock, refresh=refresh)


def script(*outcomes: object) -> Callable[[], object]:
    """A request that raises or returns each outcome in turn."""
    pending = list(outcomes)

    def fn() -> object:
        outcome = pending.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return fn


def limited(retry_after: float | None, status: int = 418) -> RateLimited:
    return RateLimited("binance", f"HTTP {status} on aggTrades", status=status, retry_after=retry_after)


def test_a_retry_after_longer_than_any_requester_waits_blocks_them_all_until_then() -> None:
    """A 418 asking for 150 s blocks the venue until then (plus the margin): a requester that waits at most 120 s is
    refused at once with a RateLimited naming the time; one that may wait sleeps exactly to it, then goes."""
    clock = Clock()
    lim = make(clock)
    error = limited(150)
    until = lim.note(error)
    assert until == error.until == START + 150 + MARGIN
    with pytest.raises(RateLimited) as info:
        lim.admit(120, clock.sleep)
    refusal = info.value
    assert (refusal.until, refusal.retry_after, refusal.status) == (until, 151, 418)
    assert f"no request goes to binance until {at_utc(until)} (150 s from now)" in str(refusal)
    assert at_utc(until) == "08:02:30 UTC"
    assert clock.slept == []
    waits: list[tuple[float, str]] = []
    lim.admit(float("inf"), clock.sleep, lambda s, r: waits.append((s, r)))
    assert clock.slept == [pytest.approx(150 + MARGIN)]
    assert waits[0][1].startswith("binance asked us to wait until 08:02:30 UTC: HTTP 418 (banned)")
    assert lim.blocked() is None
    lim.admit(0, clock.sleep)  # nothing left: no sleep, no refusal
    assert len(clock.slept) == 1


@pytest.mark.parametrize(
    ("retry_after", "status", "blocked_for"),
    [
        (1, 429, 1 + MARGIN),
        (86_400, 418, 86_400 + MARGIN),
        (None, 418, DEFAULT_BAN_SECONDS + MARGIN),
        (None, 429, None),
    ],
)
def test_what_blocks_the_venue(retry_after: float | None, status: int, blocked_for: float | None) -> None:
    """A Retry-After of any length blocks for that long, a 418 without one for Binance's first ban (two minutes), and
    a 429 without one blocks nobody (its requester backs off on its own)."""
    clock = Clock()
    lim = make(clock)
    lim.note(limited(retry_after, status))
    block = lim.blocked()
    if blocked_for is None:
        assert block is None
    else:
        assert block is not None
        assert block.until == pytest.approx(START + blocked_for)


def test_a_shorter_wait_never_shortens_a_longer_one() -> None:
    """A 429 with Retry-After 1 told during a 150 s ban leaves the ban's end where it was."""
    clock = Clock()
    lim = make(clock)
    ban = lim.note(limited(150))
    clock.t += 10
    assert lim.note(limited(1, 429)) == ban
    block = lim.blocked()
    assert block is not None
    assert (block.until, block.status) == (ban, 418)


def test_another_process_is_held_through_the_store_within_the_refresh() -> None:
    """Two limiters on one store (two processes of the host): the one told of the 418 writes it at once; the other
    reads the store at most once per refresh, so it is held from its next read on, and is refused in turn."""
    clock, store = Clock(), Store()
    stream, web = make(clock, store), make(clock, store)
    assert web.blocked() is None  # read now: the store is empty
    reads = store.reads
    until = stream.note(limited(150))
    assert store.until[KEY] == until
    assert web.blocked() is None  # within the refresh the cached read stands
    assert store.reads == reads
    clock.t += 0.2  # past the refresh
    block = web.blocked()
    assert block is not None
    assert block.until == until
    assert store.reads == reads + 1
    with pytest.raises(RateLimited) as info:
        web.admit(5, clock.sleep)
    assert info.value.until == until
    assert "another process of this host was told to wait" in str(info.value)


def test_an_unreachable_store_leaves_each_process_to_its_own_waits() -> None:
    """With the store down, a limiter still keeps (and honours) what it was told itself."""
    clock, store = Clock(), Store()
    store.down = True
    lim = make(clock, store)
    until = lim.note(limited(30, 429))
    block = lim.blocked()
    assert block is not None
    assert block.until == until
    assert store.until == {}


def test_call_with_retry_sends_nothing_during_a_block() -> None:
    """Through call_with_retry: the requester answered 418 (150 s) raises naming the time; a second requester of
    the venue is refused without sending; one that may wait 200 s sleeps to the time, then sends once."""
    clock = Clock()
    lim = make(clock)
    sent: list[float] = []

    def banned() -> object:
        sent.append(clock())
        raise limited(150)

    def ok() -> str:
        sent.append(clock())
        return "ok"

    policy = RetryPolicy(attempts=5, max_wait=120)
    with pytest.raises(RateLimited) as info:
        call_with_retry(banned, policy=policy, sleep=clock.sleep, limiter=lim)
    until = info.value.until
    assert until == START + 150 + MARGIN
    assert f"nothing is sent to it before {at_utc(until)}" in str(info.value)
    with pytest.raises(RateLimited):
        call_with_retry(ok, policy=policy, sleep=clock.sleep, limiter=lim)
    assert sent == [START]
    assert call_with_retry(ok, policy=RetryPolicy(max_wait=200), sleep=clock.sleep, limiter=lim) == "ok"
    assert sent == [START, pytest.approx(until)]


def test_a_retry_after_within_max_wait_is_waited_once() -> None:
    """A 429 with Retry-After 2 is slept once (the retry helper's wait); the limiter adds no second wait."""
    clock = Clock()
    lim = make(clock)
    waits: list[tuple[float, str]] = []
    result = call_with_retry(
        script(limited(2, 429), "ok"), sleep=clock.sleep, limiter=lim, on_wait=lambda s, r: waits.append((s, r))
    )
    assert result == "ok"
    assert clock.slept == [pytest.approx(2 + MARGIN)]
    assert waits == [(pytest.approx(2.1), "rate limited (429)")]


@given(
    events=st.lists(
        st.tuples(
            st.floats(0, 50),  # seconds before the event
            st.sampled_from(["request", "429", "418"]),
            st.integers(0, 400),  # the Retry-After of a 429/418
            st.sampled_from([0.0, 5.0, 120.0, float("inf")]),  # how long the requester may wait
        ),
        max_size=40,
    )
)
def test_no_request_is_sent_before_any_retry_after_has_passed(
    events: list[tuple[float, str, int, float]],
) -> None:
    """Whatever the exchange answers and however long each requester may wait, every request admitted goes at or
    after the end of every Retry-After told before it (the simulator's rule for a violation)."""
    clock = Clock()
    lim = make(clock)
    latest = 0.0
    for gap, kind, retry_after, max_wait in events:
        clock.t += gap
        if kind in ("429", "418"):
            lim.note(limited(retry_after, int(kind)))
            latest = max(latest, clock() + retry_after)
            continue
        block = lim.blocked()
        if block is not None and block.until - clock() > max_wait:  # refused: nothing is sent
            with pytest.raises(RateLimited):
                lim.admit(max_wait, clock.sleep)
            continue
        lim.admit(max_wait, clock.sleep)
        assert clock() >= latest


def test_venue_key_is_the_exchange_at_its_host() -> None:
    """One limiter per exchange and host: the path and scheme do not matter, the port does."""
    assert venue_key("binance", "https://api.binance.com/") == "binance@api.binance.com"
    assert venue_key("kraken", "http://127.0.0.1:9900/kraken") == "kraken@127.0.0.1:9900"
    a = limiter_module.limiter_for("binance", "http://127.0.0.1:9901")
    assert limiter_module.limiter_for("binance", "http://127.0.0.1:9901/api") is a
    assert limiter_module.limiter_for("binance", "http://127.0.0.1:9902") is not a


def test_an_unavailable_exchange_blocks_nobody() -> None:
    """A 5xx is retried on the requester's own back-off; the venue stays open to the others."""
    clock = Clock()
    lim = make(clock)
    fn = script(ExchangeUnavailable("binance", "HTTP 503", cause="HTTP 503"), "ok")
    assert call_with_retry(fn, sleep=clock.sleep, limiter=lim) == "ok"
    assert lim.blocked() is None
