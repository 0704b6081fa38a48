"""Per-client request limits of the API over a real Redis cache: an anonymous client past its rate gets 429s
with ``Retry-After`` and a JSON error; staff and other clients have buckets of their own."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

import tradingsite.settings as configured
from tradingsite.devstack import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(db: None, settings: Any) -> Iterator[dict[str, str | None]]:
    """The configured rates (the suite's conftest lifts them), with this test's counters cleared."""
    rates = dict(configured.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    cache.clear()
    yield rates
    cache.clear()


def test_300_rapid_anonymous_requests_are_throttled_past_the_limit(rates: dict[str, str | None]) -> None:
    """With the default anonymous rate, the first requests of a burst are answered and every one past the limit
    is a 429 with Retry-After and a JSON body saying when to come back; another address is not affected."""
    limit = int(str(rates["anon"]).split("/")[0])
    client = Client(REMOTE_ADDR="198.51.100.7")
    statuses: list[int] = []
    throttled = []
    for _ in range(300):
        response = client.get("/api/v1/instruments")
        statuses.append(response.status_code)
        if response.status_code == 429:
            throttled.append(response)
    print(f"\nanonymous rate {rates['anon']}: {dict(Counter(statuses))} of 300 requests")
    assert statuses == [200] * limit + [429] * (300 - limit)
    for response in throttled:
        seconds = int(response["Retry-After"])
        assert 1 <= seconds <= 60
        body = response.json()
        assert body["error"] == "too many requests"
        assert body["retry_after"] == seconds
        assert f"retry in {seconds} s" in body["detail"]
    assert Client(REMOTE_ADDR="198.51.100.8").get("/api/v1/instruments").status_code == 200


def test_a_client_cannot_dodge_its_limit_with_a_forwarded_for_header(settings: Any, rates: dict[str, Any]) -> None:
    """Without a trusted proxy (API_NUM_PROXIES=0) the address is REMOTE_ADDR: a made-up X-Forwarded-For on each
    request does not open a new bucket."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**rates, "anon": "3/min"}}
    client = Client(REMOTE_ADDR="198.51.100.9")
    statuses = [client.get("/api/v1/instruments", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code for i in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


def test_staff_have_their_own_bucket_at_their_own_rate(settings: Any, rates: dict[str, Any]) -> None:
    """A staff session is counted by account at the staff rate, apart from anonymous clients of its address."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "anon": "2/min", "staff": "4/min"},
    }
    anonymous = Client(REMOTE_ADDR="198.51.100.10")
    staff = Client(REMOTE_ADDR="198.51.100.10")
    staff.force_login(get_user_model().objects.create_user("ops", password="pw-ops-1234", is_staff=True))
    assert [anonymous.get("/api/v1/feeds").status_code for _ in range(3)] == [200, 200, 429]
    assert [staff.get("/api/v1/feeds").status_code for _ in range(5)] == [200, 200, 200, 200, 429]


def test_market_data_is_served_while_the_cache_is_down(settings: Any) -> None:
    """Throttling needs Redis; without it the request is answered (and the outage logged), not a 500."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anon": "3/min"}}
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/1"}}
    response = Client(REMOTE_ADDR="198.51.100.11").get("/api/v1/instruments")
    assert response.status_code == 200
