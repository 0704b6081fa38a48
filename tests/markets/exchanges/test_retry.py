"""The shared retry helper: exact Retry-After waits, capped jittered back-off, no retry of bad requests.

No network: ``fn`` is a scripted sequence of outcomes and ``sleep`` records the delays instead of sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markets.exchanges.errors import BadRequest, ExchangeError, ExchangeUnavailable, RateLimited
from markets.exchanges.retry import RetryPolicy, acall_with_retry, backoff_delay, call_with_retry

FAST = RetryPolicy(attempts=5, base_delay=0.5, max_delay=30.0, max_wait=120.0)


def script(*outcomes: object) -> tuple[Callable[[], object], list[int]]:
    """A function that raises or returns each outcome in turn, and the list of its call numbers."""
    calls: list[int] = []

    def fn() -> object:
        calls.append(len(calls) + 1)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return fn, calls


def limited(retry_after: float | None = 2, status: int = 429) -> RateLimited:
    return RateLimited("binance", f"rate limited us (HTTP {status})", status=status, retry_after=retry_after)


def down(cause: str = "HTTP 503 from aggTrades") -> ExchangeUnavailable:
    return ExchangeUnavailable("binance", f"aggTrades failed: {cause}", url="http://127.0.0.1:9", cause=cause)


def test_rate_limited_waits_exactly_retry_after_plus_margin() -> None:
    """Each 429 is followed by a sleep of exactly Retry-After + margin before the next try."""
    fn, calls = script(limited(2), limited(3, status=418), "ok")
    slept: list[float] = []
    waits: list[tuple[float, str]] = []
    result = call_with_retry(
        fn, policy=FAST, sleep=slept.append, rng=random.Random(1), on_wait=lambda s, r: waits.append((s, r))
    )
    assert result == "ok"
    assert calls == [1, 2, 3]
    assert slept == [pytest.approx(2.1), pytest.approx(3.1)]
    assert waits == [(pytest.approx(2.1), "rate limited (429)"), (pytest.approx(3.1), "rate limited (418, banned)")]


def test_rate_limited_without_retry_after_waits_the_backoff_ceiling() -> None:
    """A 429 with no Retry-After still waits (the un-jittered back-off ceiling), never zero."""
    fn, _ = script(limited(None), limited(None), "ok")
    slept: list[float] = []
    call_with_retry(fn, policy=FAST, sleep=slept.append, rng=random.Random(1))
    assert slept == [pytest.approx(0.6), pytest.approx(1.1)]


def test_retry_after_beyond_max_wait_is_raised_at_once() -> None:
    """A Retry-After longer than max_wait is not slept: RateLimited says how long the exchange asked for."""
    fn, calls = script(limited(600, status=418), "ok")
    slept: list[float] = []
    with pytest.raises(RateLimited) as info:
        call_with_retry(fn, policy=FAST, sleep=slept.append)
    assert calls == [1]
    assert slept == []
    assert info.value.retry_after == 600
    assert "asked to wait 600 s, longer than the 120 s we wait" in str(info.value)
    assert str(info.value).startswith("binance: ")


def test_unavailable_is_retried_with_jittered_backoff() -> None:
    """5xx-like failures are retried after a jittered delay within the exponential ceiling."""
    fn, calls = script(down(), down(), "ok")
    slept: list[float] = []
    waits: list[str] = []
    assert (
        call_with_retry(fn, policy=FAST, sleep=slept.append, rng=random.Random(7), on_wait=lambda s, r: waits.append(r))
        == "ok"
    )
    assert calls == [1, 2, 3]
    assert 0 <= slept[0] <= 0.5
    assert 0 <= slept[1] <= 1.0
    assert waits[0] == "unavailable: HTTP 503 from aggTrades (attempt 1 of 5)"


def test_unavailable_after_all_attempts_names_them() -> None:
    """After ``attempts`` failures the error says how many tries, the URL and the last cause."""
    fn, calls = script(*[down(f"HTTP 503 #{i}") for i in range(1, 4)])
    with pytest.raises(ExchangeUnavailable) as info:
        call_with_retry(fn, policy=RetryPolicy(attempts=3), sleep=lambda s: None)
    assert calls == [1, 2, 3]
    err = info.value
    assert err.attempts == 3
    assert str(err) == "binance: unavailable at http://127.0.0.1:9 after 3 attempts; last error: HTTP 503 #3"
    assert isinstance(err.__cause__, ExchangeUnavailable)


def test_rate_limited_on_the_last_attempt_is_raised() -> None:
    """A 429 on the last allowed try is raised as is, with no useless wait after it."""
    fn, calls = script(limited(1), limited(1))
    slept: list[float] = []
    with pytest.raises(RateLimited):
        call_with_retry(fn, policy=RetryPolicy(attempts=2), sleep=slept.append)
    assert calls == [1, 2]
    assert slept == [pytest.approx(1.1)]


@pytest.mark.parametrize(
    "error",
    [BadRequest("binance", "unknown symbol 'NOPE'", status=400, code=-1121), ValueError("not an exchange error")],
)
def test_bad_requests_and_other_errors_are_not_retried(error: Exception) -> None:
    """A rejected request (or a bug) is raised after the first try, with no wait."""
    fn, calls = script(error, "ok")
    slept: list[float] = []
    with pytest.raises(type(error)):
        call_with_retry(fn, policy=FAST, sleep=slept.append)
    assert calls == [1]
    assert slept == []


async def test_async_twin_waits_the_same_way() -> None:
    """acall_with_retry awaits the same waits (Retry-After + margin, then back-off) between awaited tries."""
    fn, calls = script(limited(2), down(), "ok")
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    async def afn() -> object:
        return fn()

    assert await acall_with_retry(afn, policy=FAST, sleep=fake_sleep, rng=random.Random(3)) == "ok"
    assert calls == [1, 2, 3]
    assert slept[0] == pytest.approx(2.1)
    assert 0 <= slept[1] <= 1.0


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    """The same seed gives the same delays (the jitter comes only from the rng passed in)."""
    a = [backoff_delay(n, FAST, random.Random(42)) for n in range(1, 8)]
    b = [backoff_delay(n, FAST, random.Random(42)) for n in range(1, 8)]
    assert a == b


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    base=st.floats(0, 10),
    cap=st.floats(0, 60),
    seed=st.integers(0, 2**32),
)
def test_backoff_never_exceeds_its_ceiling(attempt: int, base: float, cap: float, seed: int) -> None:
    """Full jitter: 0 <= delay <= min(max_delay, base_delay * 2**(attempt-1)), for any attempt number."""
    policy = RetryPolicy(base_delay=base, max_delay=cap)
    delay = backoff_delay(attempt, policy, random.Random(seed))
    assert 0 <= delay <= min(cap, base * 2.0 ** min(attempt - 1, 64))


@given(retry_after=st.integers(0, 120), attempts=st.integers(2, 6))
def test_rate_limited_wait_is_exactly_retry_after(retry_after: int, attempts: int) -> None:
    """Whatever the Retry-After (up to max_wait), the wait before the next try is exactly it plus the margin."""
    fn, _ = script(limited(retry_after), "ok")
    slept: list[float] = []
    call_with_retry(fn, policy=RetryPolicy(attempts=attempts), sleep=slept.append)
    assert slept == [retry_after + 0.1]


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base_delay": -1}, {"max_wait": -0.5}])
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    """A policy that could never try, or would wait negative time, is refused when built."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_errors_read_as_sentences_and_rebuild_from_their_args() -> None:
    """str() names the exchange; each class can be rebuilt from (exchange, message) alone."""
    for cls in (ExchangeError, RateLimited, ExchangeUnavailable, BadRequest):
        err = cls("binance", "something failed")
        assert str(err) == "binance: something failed"
        again = cls(*err.args)
        assert (again.exchange, again.message) == ("binance", "something failed")
