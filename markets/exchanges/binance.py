"""Binance Spot: pure parsers of its payloads, and :class:`BinanceRest`, its REST market data. No Django here.

The ``parse_*`` functions are independent of the REST client (the live stream reuses ``parse_agg_trade`` and
``parse_trade``): prices and quantities become ``Decimal`` from Binance's strings (never float), times
UTC-aware datetimes from integer milliseconds, and a malformed payload is a ``ValueError`` naming the field.

:class:`BinanceRest` goes through python-binance's synchronous ``Client``. Every request is retried with
:func:`markets.exchanges.retry.call_with_retry`, and a small weight governor waits for the next minute rather
than provoke a 429 when the weight Binance reports (``X-MBX-USED-WEIGHT-1M``) nears the limit.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

from .base import CandleBar, Capabilities, InstrumentInfo, Source, TradeTick
from .errors import BadRequest, ExchangeError, ExchangeUnavailable, RateLimited
from .retry import OnWait, RetryPolicy, call_with_retry

EXCHANGE = "binance"
CAPABILITIES = Capabilities(
    ids_contiguous=True,
    max_klines=1000,
    max_trades=1000,
    klines_omit_quiet=False,
    trades_time_window=None,  # the 1-hour aggTrades window was lifted on 2022-12-05
)
DEFAULT_WEIGHT_LIMIT = 6000  # REQUEST_WEIGHT per minute until exchangeInfo says otherwise
WEIGHT_HEADROOM = 0.9  # at this share of the limit, wait for the next minute instead of risking a 429
MINUTE_MARGIN = 0.25  # seconds past the minute boundary, for clock skew between us and Binance
UNKNOWN_SYMBOL = -1121
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KLINE_FIELDS = (
    "open time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close time",
    "quote volume",
    "trades",
    "taker buy volume",
    "taker buy quote volume",
)

T = TypeVar("T")
log = logging.getLogger(__name__)


# -- parsers ------------------------------------------------------------------------------------------------
def parse_exchange_info(payload: Any) -> list[InstrumentInfo]:
    """The symbols of an exchangeInfo answer, with tick/step size and min notional read from the filters
    (``PRICE_FILTER``, ``LOT_SIZE``, ``NOTIONAL`` or the older ``MIN_NOTIONAL``; a zero means "no rule" and
    becomes None) and every filter kept raw. Example (abridged)::

        {"timezone": "UTC", "serverTime": 1565246363776,
         "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
         "symbols": [{"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC",
                      "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.00000100",
                                   "maxPrice": "100000.00000000", "tickSize": "0.00000100"},
                                  {"filterType": "LOT_SIZE", "minQty": "0.00100000", "maxQty": "100000.00000000",
                                   "stepSize": "0.00100000"},
                                  {"filterType": "NOTIONAL", "minNotional": "10.00000000", ...}], ...}]}
    """
    symbols = _get(_mapping(payload, "exchangeInfo"), "symbols", "exchangeInfo")
    if not isinstance(symbols, list):
        raise ValueError(f"exchangeInfo field 'symbols' must be an array, got {symbols!r:.80}")
    out = []
    for entry in symbols:
        s = _mapping(entry, "exchangeInfo symbol")
        what = f"exchangeInfo symbol {s.get('symbol')!r}"
        symbol, base, quote_ = (_text(s, k, what) for k in ("symbol", "baseAsset", "quoteAsset"))
        filters = s.get("filters", [])
        if not isinstance(filters, list) or not all(isinstance(f, Mapping) and "filterType" in f for f in filters):
            raise ValueError(f"{what} field 'filters' must be an array of objects with a filterType")
        by_type = {f["filterType"]: f for f in filters}
        notional = by_type.get("NOTIONAL") or by_type.get("MIN_NOTIONAL")
        out.append(
            InstrumentInfo(
                exchange=EXCHANGE,
                symbol=symbol,
                canonical=f"{base}-{quote_}",
                base=base,
                quote=quote_,
                status=_text(s, "status", what),
                tick_size=_filter_value(by_type.get("PRICE_FILTER"), "tickSize", what),
                step_size=_filter_value(by_type.get("LOT_SIZE"), "stepSize", what),
                min_notional=_filter_value(notional, "minNotional", what),
                filters=tuple(dict(f) for f in filters),
            )
        )
    return out


def parse_weight_limit(payload: Any) -> int | None:
    """The REQUEST_WEIGHT limit per minute from an exchangeInfo answer's ``rateLimits``, or None when absent:
    ``{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}``."""
    limits = payload.get("rateLimits") if isinstance(payload, Mapping) else None
    for r in limits if isinstance(limits, list) else ():
        if (
            isinstance(r, Mapping)
            and r.get("rateLimitType") == "REQUEST_WEIGHT"
            and r.get("interval") == "MINUTE"
            and r.get("intervalNum") == 1
            and isinstance(r.get("limit"), int)
            and r["limit"] > 0
        ):
            return int(r["limit"])
    return None


def parse_kline(row: Any, *, symbol: str, interval: str, now: datetime) -> CandleBar:
    """One row of GET /api/v3/klines; ``closed`` is whether its close time is before ``now``. Example::

        [1499040000000, "0.01634790", "0.80000000", "0.01575800", "0.01577100", "148976.11427815",
         1499644799999, "2434.19055334", 308, "1756.87402397", "28.46694368", "0"]

    (open time, open, high, low, close, volume, close time = open + interval - 1 ms, quote volume, trades,
    taker buy volume, taker buy quote volume, unused).
    """
    if not isinstance(row, list | tuple) or len(row) < len(KLINE_FIELDS):
        raise ValueError(f"kline must be an array of 12 fields, got {row!r:.80}")
    _aware(now, "now")
    named = dict(zip(KLINE_FIELDS, row, strict=False))
    decimals = {
        k: _decimal(named, k, "kline")
        for k in (
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote volume",
            "taker buy volume",
            "taker buy quote volume",
        )
    }
    open_time, close_time = _ms_time(named, "open time", "kline"), _ms_time(named, "close time", "kline")
    if close_time < open_time:
        raise ValueError(f"kline field 'close time' ({close_time}) is before its open time ({open_time})")
    return CandleBar(
        exchange=EXCHANGE,
        symbol=symbol,
        interval=interval,
        open_time=open_time,
        close_time=close_time,
        open=decimals["open"],
        high=decimals["high"],
        low=decimals["low"],
        close=decimals["close"],
        volume=decimals["volume"],
        quote_volume=decimals["quote volume"],
        trades=_int(named, "trades", "kline"),
        taker_buy_volume=decimals["taker buy volume"],
        taker_buy_quote_volume=decimals["taker buy quote volume"],
        source="exchange",
        closed=close_time < now,
    )


def parse_agg_trade(obj: Any, *, symbol: str | None = None, received_at: datetime, source: Source) -> TradeTick:
    """One aggregate trade, from GET /api/v3/aggTrades (no symbol inside: pass ``symbol``)::

        {"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781, "T": 1498793709153,
         "m": true, "M": true}

    or from a ``<symbol>@aggTrade`` WebSocket frame (the ``data`` of a combined-stream frame)::

        {"e": "aggTrade", "E": 1672515782136, "s": "BNBBTC", "a": 12345, "p": "0.001", "q": "100", "f": 100,
         "l": 105, "T": 1672515782136, "m": true, "M": true}

    ``m`` true means the buyer was the maker, so the taker sold: ``taker_side`` "sell".
    """
    what = "aggTrade"
    obj = _mapping(obj, what)
    return _tick(
        obj,
        what,
        _symbol(obj, symbol, what),
        _int(obj, "a", what),
        received_at,
        source,
        _int(obj, "f", what),
        _int(obj, "l", what),
    )


def parse_trade(obj: Any, *, symbol: str | None = None, received_at: datetime, source: Source) -> TradeTick:
    """One ``<symbol>@trade`` WebSocket frame (the ``data`` of a combined-stream frame); the trade is its own
    first and last trade. Example from a real capture::

        {"e": "trade", "E": 1723161255343, "s": "BTCUSDT", "t": 3735683259, "p": "61837.63000000",
         "q": "0.02000000", "T": 1723161255342, "m": true, "M": true}
    """
    what = "trade"
    obj = _mapping(obj, what)
    trade_id = _int(obj, "t", what)
    return _tick(obj, what, _symbol(obj, symbol, what), trade_id, received_at, source, trade_id, trade_id)


def _tick(
    obj: Mapping[str, Any],
    what: str,
    symbol: str,
    trade_id: int,
    received_at: datetime,
    source: Source,
    first: int,
    last: int,
) -> TradeTick:
    if "e" in obj and obj["e"] != what:
        raise ValueError(f"{what} field 'e' must be {what!r}, got {obj['e']!r:.40}")
    buyer_is_maker = _get(obj, "m", what)
    if not isinstance(buyer_is_maker, bool):
        raise ValueError(f"{what} field 'm' must be true or false, got {buyer_is_maker!r:.40}")
    return TradeTick(
        exchange=EXCHANGE,
        symbol=symbol,
        trade_id=trade_id,
        price=_decimal(obj, "p", what),
        qty=_decimal(obj, "q", what),
        taker_side="sell" if buyer_is_maker else "buy",
        ts=_ms_time(obj, "T", what),
        received_at=_aware(received_at, "received_at"),
        source=Source(source),
        first_trade_id=first,
        last_trade_id=last,
    )


def _mapping(obj: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{what} must be a JSON object, got {obj!r:.80}")
    return obj


def _get(obj: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise ValueError(f"{what} field {key!r} is missing") from None


def _text(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = _get(obj, key, what)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} field {key!r} must be a non-empty string, got {value!r:.40}")
    return value


def _int(obj: Mapping[str, Any], key: str, what: str) -> int:
    value = _get(obj, key, what)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} field {key!r} must be a non-negative integer, got {value!r:.40}")
    return value


def _decimal(obj: Mapping[str, Any], key: str, what: str) -> Decimal:
    value = _get(obj, key, what)
    if not isinstance(value, str):  # a float would already have lost digits
        raise ValueError(f"{what} field {key!r} must be a decimal string, got {value!r:.40}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what} field {key!r} must be a decimal string, got {value!r:.40}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"{what} field {key!r} must be a finite non-negative number, got {value!r:.40}")
    return number


def _ms_time(obj: Mapping[str, Any], key: str, what: str) -> datetime:
    return EPOCH + timedelta(milliseconds=_int(obj, key, what))


def _symbol(obj: Mapping[str, Any], given: str | None, what: str) -> str:
    if "s" not in obj:
        if not given:
            raise ValueError(f"{what} field 's' is missing and no symbol was given")
        return given
    inside = _text(obj, "s", what)
    if given and given != inside:
        raise ValueError(f"{what} field 's' is {inside!r}, not the expected {given!r}")
    return inside


def _filter_value(f: Mapping[str, Any] | None, key: str, what: str) -> Decimal | None:
    if f is None:
        return None
    value = _decimal(f, key, f"{what} filter {f['filterType']}")
    return value or None


def _aware(t: datetime, name: str) -> datetime:
    if not isinstance(t, datetime) or t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {t!r}")
    return t


# -- REST -------------------------------------------------------------------------------------------------
class BinanceRest:
    """Binance Spot REST market data (:class:`markets.exchanges.base.RestAdapter`), pointed at ``base_url``
    (``https://api.binance.com`` or the simulator). Not thread-safe: one instance per thread.

    ``requests`` counts the HTTP requests sent, retries included; ``used_weight`` is the last
    ``X-MBX-USED-WEIGHT-1M`` Binance reported (error answers included) and ``weight_limit`` the per-minute
    limit (from exchangeInfo once :meth:`instruments` ran, else 6000). ``on_wait(seconds, reason)`` is told
    of every wait (rate limit, back-off, weight governor) before it starts.
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.requests = 0
        self.used_weight: int | None = None
        self.weight_limit = DEFAULT_WEIGHT_LIMIT
        self._weight_minute: int | None = None  # the minute (clock // 60) used_weight was reported in
        self._sleep, self._on_wait, self._clock = sleep, on_wait, clock
        self._client = Client(api_key or None, api_secret or None, ping=False)
        self._client.API_URL = self.base_url + "/api"
        self._client.REQUEST_TIMEOUT = timeout

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
            lambda p: (parse_exchange_info(p), parse_weight_limit(p)),
        )
        infos, limit = payload
        if limit is not None:
            self.weight_limit = limit
        return infos

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
            "limit": _limit(limit, self.capabilities.max_klines),
        }

        def parse(rows: Any) -> list[CandleBar]:
            now = datetime.now(UTC)
            bars = [parse_kline(r, symbol=symbol, interval=interval, now=now) for r in _array(rows, "klines")]
            return [b for b in bars if start <= b.open_time < end]

        return self._call("klines", params, lambda: self._client.get_klines(**params), parse)

    def trades_from_id(self, symbol: str, from_id: int, limit: int = 1000) -> list[TradeTick]:
        """Up to ``limit`` (at most 1000) aggregate trades with ids from ``from_id`` up, in id order."""
        if isinstance(from_id, bool) or not isinstance(from_id, int) or from_id < 0:
            raise ValueError(f"from_id must be a non-negative integer, got {from_id!r}")
        params = {"symbol": symbol, "fromId": from_id, "limit": _limit(limit, self.capabilities.max_trades)}
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
            "limit": _limit(limit, self.capabilities.max_trades),
        }
        return self._trades(params)

    def latest_trades(self, symbol: str, limit: int = 1) -> list[TradeTick]:
        """The ``limit`` (at most 1000) most recent aggregate trades, oldest first."""
        return self._trades({"symbol": symbol, "limit": _limit(limit, self.capabilities.max_trades)})

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
            self._govern()
            payload = self._send(endpoint, params, send)
            try:
                return parse(payload)
            except ValueError as exc:  # the exchange answered nonsense: as good as no answer
                raise ExchangeUnavailable(
                    EXCHANGE,
                    f"{_what(endpoint, params)} answered a malformed payload: {exc}",
                    url=self.base_url,
                    cause=f"malformed {endpoint} payload: {exc}",
                ) from exc

        return call_with_retry(attempt, policy=self.policy, sleep=self._sleep, on_wait=self._on_wait)

    def _send(self, endpoint: str, params: Mapping[str, Any], send: Callable[[], Any]) -> Any:
        """One HTTP request; python-binance's and requests' errors mapped onto :mod:`errors`."""
        client = self._client
        client.response = None  # python-binance keeps the previous response when a request fails to connect
        self.requests += 1
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
            raise self._unavailable(endpoint, params, f"{endpoint}: {_network_reason(exc)}") from exc
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
            retry_after = _seconds(headers.get("Retry-After"))
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
        raw = response.headers.get("X-MBX-USED-WEIGHT-1M") if response is not None else None
        if raw is not None and raw.isdigit():
            self.used_weight = int(raw)
            self._weight_minute = int(self._clock() // 60)

    def _govern(self) -> None:
        """Wait for the next minute when the weight reported this minute is near the limit."""
        if self.used_weight is None or self._weight_minute is None:
            return
        now = self._clock()
        if int(now // 60) != self._weight_minute or self.used_weight < WEIGHT_HEADROOM * self.weight_limit:
            return
        seconds = (self._weight_minute + 1) * 60 - now + MINUTE_MARGIN
        reason = f"request weight {self.used_weight} of {self.weight_limit} used this minute"
        log.info("waiting %.1f s: %s", seconds, reason)
        if self._on_wait is not None:
            self._on_wait(seconds, reason)
        self._sleep(seconds)
        self._weight_minute = None  # a new minute: the old count no longer applies


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


def _limit(limit: int, cap: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    return min(limit, cap)


def _array(payload: Any, what: str) -> list[Any]:
    if not isinstance(payload, list):
        raise ValueError(f"{what} answer must be an array, got {payload!r:.80}")
    return payload


def _seconds(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def _network_reason(exc: requests.RequestException) -> str:
    """``connection refused`` rather than urllib3's paragraph: the OS error, else the innermost quoted reason."""
    text = str(exc)
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", text) or re.findall(r"'([^']{8,})'\)", text)
    return found[-1].strip().lower() if found else type(exc).__name__
