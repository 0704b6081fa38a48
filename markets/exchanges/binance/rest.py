"""Binance Spot REST market data through python-binance's synchronous ``Client`` (built by
:func:`.client.python_binance`). No Django here.

Every request is retried with :func:`markets.exchanges.retry.call_with_retry` and admitted by the venue's limiter
(:mod:`markets.exchanges.limiter`: nothing is sent while Binance has asked this host to wait), and its weight is
reserved first in the venue's :class:`~markets.exchanges.weight.WeightBudget`, which waits for the next window
rather than provoke a 429 and learns what others spent from ``X-MBX-USED-WEIGHT-1M``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from binance.exceptions import BinanceAPIException, BinanceRequestException

from ... import metrics
from ..base import CandleBar, Capabilities, InstrumentInfo, Source, TradeTick
from ..errors import BadRequest, ExchangeError, ExchangeUnavailable, RateLimited
from ..http import network_reason, page_limit, retry_after_seconds
from ..limiter import VenueLimiter, limiter_for
from ..retry import OnWait, RetryPolicy, call_with_retry
from ..weight import WeightBudget, budget_for, reported_weight
from .client import python_binance
from .parse import (
    EPOCH,
    EXCHANGE,
    WINDOW_UNITS,
    _aware,
    parse_agg_trade,
    parse_exchange_info,
    parse_kline,
    parse_weight_rule,
)

CAPABILITIES = Capabilities(
    ids_contiguous=True,
    max_klines=1000,
    max_trades=1000,
    klines_omit_quiet=False,
    trades_time_window=None,  # the 1-hour aggTrades window was lifted on 2022-12-05
)
DEFAULT_WEIGHT_LIMIT = 6000  # REQUEST_WEIGHT per minute until exchangeInfo says otherwise
LIMIT_TOLD = re.compile(r"current limit is (\d+) request weight per (\d+) (SECOND|MINUTE|HOUR|DAY)", re.IGNORECASE)
WEIGHTS = {"exchangeInfo": 20, "aggTrades": 4, "klines": 2}  # Binance's weight of each endpoint this adapter asks
UNKNOWN_SYMBOL = -1121
TRADING = "TRADING"  # exchangeInfo's status of a symbol that trades now (others: BREAK, HALT, ...)

T = TypeVar("T")
log = logging.getLogger(__name__)


class BinanceRest:
    """Binance Spot REST market data (:class:`markets.exchanges.base.RestAdapter`), pointed at ``base_url``
    (``https://api.binance.com`` or the simulator). Not thread-safe: one instance per thread.

    ``requests`` counts the HTTP requests sent, retries included; ``used_weight`` is the last
    ``X-MBX-USED-WEIGHT-1M`` Binance reported (error answers included) and ``weight_limit`` the per-minute
    limit (from exchangeInfo once :meth:`instruments` ran, else 6000). ``on_wait(seconds, reason)`` is told
    of every wait (rate limit, back-off, weight budget) before it starts. ``limiter`` and ``budget`` are the
    venue's (the process's ones for Binance at this host unless given). :meth:`twin` makes another instance for
    another thread, sharing them.
    """

    name = EXCHANGE
    capabilities = CAPABILITIES

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        api_secret: str = "",
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        sleep: Callable[[float], object] = time.sleep,
        on_wait: OnWait | None = None,
        clock: Callable[[], float] = time.time,
        limiter: VenueLimiter | None = None,
        budget: WeightBudget | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter or limiter_for(EXCHANGE, self.base_url)
        self.budget = budget or budget_for(EXCHANGE, self.base_url, DEFAULT_WEIGHT_LIMIT)
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.requests = 0
        self.used_weight: int | None = None
        self.weight_limit = DEFAULT_WEIGHT_LIMIT
        self._sleep, self._on_wait, self._clock = sleep, on_wait, clock
        self._keys = (api_key, api_secret)
        self._reported: tuple[int, int] | None = None  # (used, window seconds) the last answer reported
        self._client = python_binance(self.base_url, key=api_key, secret=api_secret, timeout=timeout)

    def twin(self) -> BinanceRest:
        """Another adapter like this one (for another thread), sharing the venue's limiter and weight budget."""
        return BinanceRest(
            self.base_url,
            api_key=self._keys[0],
            api_secret=self._keys[1],
            policy=self.policy,
            timeout=self.timeout,
            sleep=self._sleep,
            on_wait=self._on_wait,
            clock=self._clock,
            limiter=self.limiter,
            budget=self.budget,
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close_connection()

    def __enter__(self) -> BinanceRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def instruments(self, symbols: Sequence[str] | None = None) -> list[InstrumentInfo]:
        """Every symbol (``symbols`` None) or the named ones; BadRequest when one is unknown. Learns the
        weight limit from the answer's rateLimits."""
        params: dict[str, Any] = {}
        if symbols is not None:
            if isinstance(symbols, str):
                raise ValueError(f"symbols must be a list of symbols, got the string {symbols!r}")
            if not symbols:
                return []
            params["symbols"] = json.dumps(list(symbols), separators=(",", ":"))
        # python-binance's get_exchange_info takes no parameters, and URL-quotes no value but "symbol".
        query = {k: quote(v, safe="") for k, v in params.items()}
        payload = self._call(
            "exchangeInfo",
            params,
            lambda: self._client._get("exchangeInfo", data=dict(query)),
            lambda p: (parse_exchange_info(p), parse_weight_rule(p)),
        )
        infos, rule = payload
        if rule is not None:
            self.weight_limit = rule[0]
            self.budget.learn(limit=rule[0], window=rule[1])
        return infos

    def trading_instruments(self) -> list[InstrumentInfo]:
        """Every symbol whose status is TRADING, from one exchangeInfo request."""
        return [i for i in self.instruments() if i.status == TRADING]

    def klines(self, symbol: str, interval: str, start: datetime, end: datetime, limit: int = 1000) -> list[CandleBar]:
        """Up to ``limit`` (at most 1000) candles whose open time is in ``[start, end)``, oldest first;
        ``closed`` False for one still open now."""
        if interval not in self.capabilities.intervals:
            raise ValueError(f"unsupported interval {interval!r}; use one of {', '.join(self.capabilities.intervals)}")
        start_ms, end_ms = _ms_range(start, end)
        if end_ms <= start_ms:
            return []
        params = {
            "symbol": symbol,
            "interval": interval,
            "startTime": start_ms,
            "endTime": end_ms - 1,
            "limit": page_limit(limit, self.capabilities.max_klines),
        }

        def parse(rows: Any) -> list[CandleBar]:
            now = datetime.now(UTC)
            bars = [parse_kline(r, symbol=symbol, interval=interval, now=now) for r in _array(rows, "klines")]
            return [b for b in bars if start <= b.open_time < end]

        return self._call("klines", params, lambda: self._client.get_klines(**params), parse)

    def trades_from_id(
        self, symbol: str, from_id: int, limit: int = 1000, *, since: datetime | None = None
    ) -> list[TradeTick]:
        """Up to ``limit`` (at most 1000) aggregate trades with ids from ``from_id`` up, in id order (Binance
        pages by id: ``since`` is not needed)."""
        if isinstance(from_id, bool) or not isinstance(from_id, int) or from_id < 0:
            raise ValueError(f"from_id must be a non-negative integer, got {from_id!r}")
        params = {"symbol": symbol, "fromId": from_id, "limit": page_limit(limit, self.capabilities.max_trades)}
        return self._trades(params)

    def trades_by_time(self, symbol: str, start: datetime, end: datetime, limit: int = 1000) -> list[TradeTick]:
        """Up to ``limit`` (at most 1000) aggregate trades with exchange time in ``[start, end)``, oldest first.
        Exchanges that cap the window declare it in ``capabilities.trades_time_window``; page further by id."""
        window = self.capabilities.trades_time_window
        start_ms, end_ms = _ms_range(start, end)
        if window is not None and end - start > window:
            raise ValueError(
                f"a {self.name} trades-by-time window is at most {window}, got {end - start} "
                f"({start.isoformat()} to {end.isoformat()}); page by id with trades_from_id"
            )
        if end_ms <= start_ms:
            return []
        params = {
            "symbol": symbol,
            "startTime": start_ms,
            "endTime": end_ms - 1,
            "limit": page_limit(limit, self.capabilities.max_trades),
        }
        return self._trades(params)

    def latest_trades(self, symbol: str, limit: int = 1) -> list[TradeTick]:
        """The ``limit`` (at most 1000) most recent aggregate trades, oldest first."""
        return self._trades({"symbol": symbol, "limit": page_limit(limit, self.capabilities.max_trades)})

    def _trades(self, params: dict[str, Any]) -> list[TradeTick]:
        def parse(rows: Any) -> list[TradeTick]:
            now = datetime.now(UTC)
            return [
                parse_agg_trade(r, symbol=params["symbol"], received_at=now, source=Source.REST)
                for r in _array(rows, "aggTrades")
            ]

        return self._call("aggTrades", params, lambda: self._client.get_aggregate_trades(**params), parse)

    # -- one request, retried ----------------------------------------------------------------------------------
    def _call(self, endpoint: str, params: Mapping[str, Any], send: Callable[[], Any], parse: Callable[[Any], T]) -> T:
        """``parse(send())`` through the retry helper, the weight governor before every attempt."""

        def attempt() -> T:
            ticket = self.budget.take(WEIGHTS.get(endpoint, 1), self._sleep, self._announce)
            self._reported = None
            try:
                # the budget may have slept: a Retry-After told meanwhile holds this request too
                self.limiter.admit(self.policy.max_wait, self._sleep, self._announce)
                payload = self._send(endpoint, params, send)
            finally:
                self.budget.settle(ticket, self._reported)
            try:
                return parse(payload)
            except ValueError as exc:  # the exchange answered nonsense: as good as no answer
                raise ExchangeUnavailable(
                    EXCHANGE,
                    f"{_what(endpoint, params)} answered a malformed payload: {exc}",
                    url=self.base_url,
                    cause=f"malformed {endpoint} payload: {exc}",
                ) from exc

        return call_with_retry(
            attempt, policy=self.policy, sleep=self._sleep, on_wait=self._on_wait, limiter=self.limiter
        )

    def _send(self, endpoint: str, params: Mapping[str, Any], send: Callable[[], Any]) -> Any:
        """One HTTP request; python-binance's and requests' errors mapped onto :mod:`errors`."""
        client = self._client
        client.response = None  # python-binance keeps the previous response when a request fails to connect
        self.requests += 1
        metrics.rest_requests.labels(EXCHANGE).inc()
        try:
            payload = send()
        except BinanceAPIException as exc:
            self._note_weight(exc.response)
            raise self._api_error(endpoint, params, exc) from exc
        except BinanceRequestException as exc:  # a 2xx whose body is not JSON
            self._note_weight(client.response)
            raise self._unavailable(endpoint, params, f"invalid JSON from {endpoint}") from exc
        except requests.Timeout as exc:
            raise self._unavailable(endpoint, params, f"no answer from {endpoint} within {self.timeout:g} s") from exc
        except requests.RequestException as exc:  # refused, reset, DNS, broken body
            raise self._unavailable(endpoint, params, f"{endpoint}: {network_reason(exc)}") from exc
        self._note_weight(client.response)
        return payload

    def _unavailable(self, endpoint: str, params: Mapping[str, Any], cause: str) -> ExchangeUnavailable:
        return ExchangeUnavailable(
            EXCHANGE, f"{_what(endpoint, params)} failed at {self.base_url}: {cause}", url=self.base_url, cause=cause
        )

    def _api_error(self, endpoint: str, params: Mapping[str, Any], exc: BinanceAPIException) -> ExchangeError:
        status, code, msg = exc.status_code, exc.code, exc.message
        headers = getattr(exc.response, "headers", None) or {}
        what = _what(endpoint, params)
        if status in (418, 429):
            metrics.rest_rate_limited.labels(EXCHANGE, str(status)).inc()
            if told := LIMIT_TOLD.search(msg or ""):  # "current limit is 6000 request weight per 1 MINUTE"
                self.budget.learn(limit=int(told[1]), window=int(told[2]) * WINDOW_UNITS[told[3].upper()])
            retry_after = retry_after_seconds(headers.get("Retry-After"))
            asked = f"asked to wait {retry_after:g} s" if retry_after is not None else "gave no Retry-After"
            verb = "banned our address (HTTP 418)" if status == 418 else "rate limited us (HTTP 429)"
            return RateLimited(
                EXCHANGE,
                f"{verb} on {what} and {asked}: {msg}",
                status=status,
                retry_after=retry_after,
                used_weight=self.used_weight,
            )
        if status >= 500:
            return self._unavailable(endpoint, params, f"HTTP {status} from {endpoint}: {msg} (code {code})")
        if code == UNKNOWN_SYMBOL:
            symbol = repr(params["symbol"]) if "symbol" in params else f"in {params.get('symbols')}"
            return BadRequest(
                EXCHANGE,
                f"unknown symbol {symbol} ({endpoint} answered code {code}: {msg})",
                status=status,
                code=code,
                msg=msg,
            )
        return BadRequest(
            EXCHANGE, f"rejected {what}: {msg} (code {code}, HTTP {status})", status=status, code=code, msg=msg
        )

    # -- request weight ----------------------------------------------------------------------------------------
    def _note_weight(self, response: requests.Response | None) -> None:
        self._reported = reported_weight(response.headers) if response is not None else None
        if self._reported is not None:
            self.used_weight = self._reported[0]
            metrics.rest_used_weight.labels(EXCHANGE).set(self.used_weight)

    def _announce(self, seconds: float, reason: str) -> None:
        log.info("waiting %.1f s: %s", seconds, reason)
        if self._on_wait is not None:
            self._on_wait(seconds, reason)


def _what(endpoint: str, params: Mapping[str, Any]) -> str:
    """``klines of 'BTCUSDT' (interval=1m, startTime=..)`` for messages."""
    symbol = params.get("symbol", params.get("symbols"))
    rest = ", ".join(f"{k}={v}" for k, v in params.items() if k not in ("symbol", "symbols"))
    return f"{endpoint}{f' of {symbol!r}' if symbol else ''}{f' ({rest})' if rest else ''}"


def _ms_range(start: datetime, end: datetime) -> tuple[int, int]:
    """``[start, end)`` as whole milliseconds ``[start_ms, end_ms)`` (each rounded up)."""
    _aware(start, "start")
    _aware(end, "end")
    if end < start:
        raise ValueError(f"end ({end.isoformat()}) is before start ({start.isoformat()})")
    return (-((EPOCH - start) // timedelta(milliseconds=1)), -((EPOCH - end) // timedelta(milliseconds=1)))


def _array(payload: Any, what: str) -> list[Any]:
    if not isinstance(payload, list):
        raise ValueError(f"{what} answer must be an array, got {payload!r:.80}")
    return payload
