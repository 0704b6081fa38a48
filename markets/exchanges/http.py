"""JSON over HTTP GET for the exchanges without a client library of their own (Coinbase, Kraken). No Django.

:class:`JsonHttp` sends one request per attempt through :func:`markets.exchanges.retry.call_with_retry` and
maps every failure onto :mod:`markets.exchanges.errors`: 429/418 are ``RateLimited`` (with the Retry-After
asked for), 5xx, timeouts, refused connections and unreadable bodies are ``ExchangeUnavailable``, any other
4xx is ``BadRequest`` carrying the exchange's own message. ``parse(body, headers)`` turns a 2xx body into
records; a ``ValueError`` from it means the exchange answered nonsense, which is treated as no answer. Every
request is admitted by the venue's limiter first (:mod:`markets.exchanges.limiter`): nothing is sent while the
exchange has asked this host to wait.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Self, TypeVar

import requests

from .. import metrics
from .errors import BadRequest, ExchangeUnavailable, RateLimited
from .limiter import VenueLimiter, limiter_for
from .retry import OnWait, RetryPolicy, call_with_retry

T = TypeVar("T")
Parse = Callable[[Any, Mapping[str, str]], T]


class JsonHttp:
    """GETs against one exchange's base URL (``https://api.exchange.coinbase.com`` or the simulator's
    ``.../coinbase``). ``error_message(body)`` reads the exchange's error text out of a 4xx/5xx body.
    ``requests`` counts the HTTP requests sent, retries included; ``limiter`` is the venue's (the process's one for
    the exchange at this host unless given). Not thread-safe: one per thread."""

    def __init__(
        self,
        exchange: str,
        base_url: str,
        *,
        error_message: Callable[[Any], str],
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        sleep: Callable[[float], object] = time.sleep,
        on_wait: OnWait | None = None,
        limiter: VenueLimiter | None = None,
    ) -> None:
        self.exchange = exchange
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter or limiter_for(exchange, self.base_url)
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.requests = 0
        self._error_message = error_message
        self._sleep, self._on_wait = sleep, on_wait
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def get(self, path: str, params: Mapping[str, Any], parse: Parse[T]) -> T:
        """``parse(body, headers)`` of ``GET base_url + path?params``, retried."""
        return call_with_retry(
            lambda: self._attempt(path, params, parse),
            policy=self.policy,
            sleep=self._sleep,
            on_wait=self._on_wait,
            limiter=self.limiter,
        )

    def _attempt(self, path: str, params: Mapping[str, Any], parse: Parse[T]) -> T:
        what = _what(path, params)
        self.requests += 1
        metrics.rest_requests.labels(self.exchange).inc()
        try:
            resp = self._session.get(self.base_url + path, params=dict(params), timeout=self.timeout)
        except requests.Timeout as exc:
            raise self._unavailable(what, f"no answer within {self.timeout:g} s") from exc
        except requests.RequestException as exc:  # refused, reset, DNS, broken body
            raise self._unavailable(what, network_reason(exc)) from exc
        try:  # numbers with a fraction stay exact (Coinbase candles, Kraken times are JSON numbers)
            body = json.loads(resp.content, parse_float=Decimal)
        except ValueError:
            body = None
        status = resp.status_code
        if status in (418, 429):
            metrics.rest_rate_limited.labels(self.exchange, str(status)).inc()
            retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
            asked = f"asked to wait {retry_after:g} s" if retry_after is not None else "gave no Retry-After"
            raise RateLimited(
                self.exchange,
                f"rate limited us (HTTP {status}) on {what} and {asked}",
                status=status,
                retry_after=retry_after,
            )
        if status >= 400:
            message = self._message(body) or resp.text[:200]
            if status >= 500:
                raise self._unavailable(what, f"HTTP {status}: {message}")
            raise BadRequest(self.exchange, f"rejected {what}: {message} (HTTP {status})", status=status, msg=message)
        if body is None:
            raise self._unavailable(what, f"the answer is not JSON: {resp.text[:80]!r}")
        try:
            return parse(body, resp.headers)
        except ValueError as exc:  # the exchange answered nonsense: as good as no answer
            raise self._unavailable(what, f"malformed answer: {exc}") from exc

    def _message(self, body: Any) -> str:
        try:
            return self._error_message(body)
        except ValueError:
            return ""

    def _unavailable(self, what: str, cause: str) -> ExchangeUnavailable:
        return ExchangeUnavailable(
            self.exchange, f"{what} failed at {self.base_url}: {cause}", url=self.base_url, cause=cause
        )


class JsonRestAdapter:
    """What every REST adapter built on :class:`JsonHttp` shares: the client, the request count, closing."""

    used_weight: int | None = None  # only Binance reports a request weight

    def __init__(
        self,
        exchange: str,
        base_url: str,
        error_message: Callable[[Any], str],
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        sleep: Callable[[float], object] = time.sleep,
        on_wait: OnWait | None = None,
        limiter: VenueLimiter | None = None,
    ) -> None:
        self.http = JsonHttp(
            exchange,
            base_url,
            error_message=error_message,
            policy=policy,
            timeout=timeout,
            sleep=sleep,
            on_wait=on_wait,
            limiter=limiter,
        )

    @property
    def requests(self) -> int:
        return self.http.requests

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_range(start: datetime, end: datetime) -> None:
    """``[start, end)`` must be timezone-aware and in order; a ValueError says which is wrong."""
    for name, t in (("start", start), ("end", end)):
        if not isinstance(t, datetime) or t.utcoffset() is None:
            raise ValueError(f"{name} must be a timezone-aware datetime, got {t!r}")
    if end < start:
        raise ValueError(f"end ({end.isoformat()}) is before start ({start.isoformat()})")


def page_limit(limit: int, cap: int) -> int:
    """``limit`` checked (a positive integer) and capped at what one request returns."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    return min(limit, cap)


def _what(path: str, params: Mapping[str, Any]) -> str:
    """``GET /products/BTC-USD/trades (after=101, limit=1000)`` for messages."""
    args = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"GET {path}{f' ({args})' if args else ''}"


def retry_after_seconds(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def network_reason(exc: requests.RequestException) -> str:
    """``connection refused`` rather than urllib3's paragraph: the OS error, else the innermost quoted reason."""
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text) or re.findall(r"'([^']{8,})'\)", text)
    return found[-1].strip().lower() if found else type(exc).__name__
