"""python-binance's ``Client``, built in one place, and Binance's signed REST API on top of it. No Django here.

:func:`python_binance` points python-binance at a base URL (Binance, its testnet or the simulator); the market
data adapter (:mod:`.rest`) and :class:`SignedClient` both use it.

:class:`SignedClient` makes the signed requests of spot trading and says what became of each in the adapters'
error hierarchy (:mod:`markets.exchanges.errors`):

- :class:`~markets.exchanges.errors.Refused` (:class:`~markets.exchanges.errors.BadRequest`, or
  :class:`~markets.exchanges.errors.RateLimited` for a 429/418): Binance answered with an error, nothing happened;
- :class:`~markets.exchanges.errors.OutcomeUnknown`: a timeout, a lost connection, a 5xx or -1007: the request
  may or may not have been executed, so the caller looks it up before sending it again.

**Waiting.** A 429/418 blocks the venue for its Retry-After in the process's limiter
(:mod:`markets.exchanges.limiter`, shared by the market data adapter and the other processes of the host). While it
holds, a request is not sent: it waits when the block ends within ``max_wait`` (a second), else it is
:class:`~markets.exchanges.errors.RateLimited` at once, naming the time (nothing happened, as for any refusal).

**Clock.** python-binance's ``timestamp_offset`` is Binance's time minus the local midpoint of a
``/api/v3/time`` round trip, measured before the first signed request and every 5 minutes; a -1021 (the request
was refused for its timestamp, so nothing happened) re-measures it and tries once more.

**Secrets.** The key and secret go to python-binance and nowhere else. An error's message is the exchange's
message with its code, or "timeout"/"connection error" with the method and path: never a URL (a GET's query
carries the signature), and never chained to a requests exception (which names it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

from ..errors import BadRequest, OutcomeUnknown, RateLimited, Refused
from ..http import retry_after_seconds
from ..limiter import VenueLimiter, limiter_for
from .parse import EXCHANGE

log = logging.getLogger(__name__)

Report = dict[str, Any]

NOT_FOUND = -2013  # "Order does not exist." / "Order list does not exist."
NOT_OPEN = -2011  # "Unknown order sent." / "Unknown order list sent.": a cancel of what is not working
BAD_TIMESTAMP = -1021
BACKEND_TIMEOUT = -1007  # "Send status unknown; execution status unknown."
CLOCK_REFRESH_SECONDS = 300.0


def python_binance(
    base_url: str, *, key: str = "", secret: str = "", timeout: float, recv_window_ms: int | None = None
) -> Client:
    """python-binance's synchronous client on ``base_url`` (``https://api.binance.com``, the testnet or the
    simulator), without its start-up ping; ``recv_window_ms`` is the recvWindow of its signed requests."""
    client = Client(key or None, secret or None, ping=False)
    client.API_URL = base_url.rstrip("/") + "/api"
    client.REQUEST_TIMEOUT = timeout
    if recv_window_ms is not None:
        client.REQUEST_RECVWINDOW = recv_window_ms
    return client


class SignedClient:
    """Binance spot's signed REST API (account, orders, order lists, trades) on ``base_url``; see the module
    docstring. Each method returns Binance's JSON answer as it is. ``limiter`` is the venue's (the process's one for
    Binance at ``base_url``'s host unless given); ``max_wait`` the longest block a request waits out. Not
    thread-safe: one per thread."""

    def __init__(
        self,
        base_url: str,
        *,
        key: str,
        secret: str,
        timeout: float,
        recv_window_ms: int = 5000,
        limiter: VenueLimiter | None = None,
        max_wait: float = 1.0,
    ) -> None:
        self.recv_window_ms = recv_window_ms
        self.limiter = limiter or limiter_for(EXCHANGE, base_url)
        self.max_wait = max_wait
        self._client = python_binance(base_url, key=key, secret=secret, timeout=timeout, recv_window_ms=recv_window_ms)
        self._clock_at: float | None = None

    @property
    def timestamp_offset(self) -> int:
        """Binance's time minus ours, in ms, as last measured (0 before the first measurement)."""
        return int(self._client.timestamp_offset)

    # -- unsigned ------------------------------------------------------------------------------------------
    def symbol(self, symbol: str) -> Report | None:
        """``symbol``'s entry of ``/api/v3/exchangeInfo``; None when Binance does not list it."""
        # python-binance's get_symbol_info downloads every symbol; ask for the one
        info = self._raw("GET /api/v3/exchangeInfo", self._client._get, "exchangeInfo", data={"symbol": symbol})
        return next((s for s in info.get("symbols", []) if s.get("symbol") == symbol), None)

    def sync_clock(self, *, force: bool = False) -> None:
        """Measure ``timestamp_offset`` (Binance's time minus the local midpoint of the request that read it)
        unless it was measured less than 5 minutes ago; ``force`` measures it now."""
        if not force and self._clock_at is not None and time.monotonic() - self._clock_at < CLOCK_REFRESH_SECONDS:
            return
        before = time.time()
        server = self._raw("GET /api/v3/time", self._client.get_server_time)["serverTime"]
        after = time.time()
        self._client.timestamp_offset = round(server - (before + after) / 2 * 1000)
        self._clock_at = time.monotonic()
        log.debug("Binance clock offset: %d ms", self._client.timestamp_offset)

    # -- signed --------------------------------------------------------------------------------------------
    def account(self) -> Report:
        """``GET /api/v3/account``: balances and commission rates."""
        return self._call("GET /api/v3/account", self._client.get_account)

    def create_order(self, **params: Any) -> Report:
        """``POST /api/v3/order`` with Binance's parameters (``symbol``, ``side``, ``newClientOrderId``...)."""
        return self._call("POST /api/v3/order", self._client.create_order, **params)

    def get_order(self, **params: Any) -> Report:
        """``GET /api/v3/order`` by ``orderId`` or ``origClientOrderId``."""
        return self._call("GET /api/v3/order", self._client.get_order, **params)

    def cancel_order(self, **params: Any) -> Report:
        """``DELETE /api/v3/order`` by ``orderId`` or ``origClientOrderId``."""
        return self._call("DELETE /api/v3/order", self._client.cancel_order, **params)

    def create_oco(self, **params: Any) -> Report:
        """``POST /api/v3/orderList/oco`` (the ``above*``/``below*`` parameters, ``listClientOrderId``)."""
        return self._call("POST /api/v3/orderList/oco", self._client.create_oco_order, **params)

    def get_order_list(self, **params: Any) -> Report:
        """``GET /api/v3/orderList`` by ``orderListId`` or ``origClientOrderId``."""
        return self._call("GET /api/v3/orderList", self._client.v3_get_order_list, **params)

    def cancel_order_list(self, **params: Any) -> Report:
        """``DELETE /api/v3/orderList`` by ``symbol`` and ``orderListId``."""
        return self._call("DELETE /api/v3/orderList", self._client.v3_delete_order_list, **params)

    def my_trades(self, **params: Any) -> list[Report]:
        """``GET /api/v3/myTrades`` of ``symbol`` (by ``orderId``)."""
        return self._call("GET /api/v3/myTrades", self._client.get_my_trades, **params)

    # -- one request -----------------------------------------------------------------------------------------
    def _call(self, label: str, fn: Callable[..., Any], **params: Any) -> Any:
        """A signed request (``label``: method and path, for messages and logs) with a synced clock; a -1021
        re-measures the clock and tries once more."""
        self.sync_clock()
        try:
            return self._raw(label, fn, **params)
        except Refused as err:
            if err.code != BAD_TIMESTAMP:
                raise
            log.warning("%s: re-measuring the clock offset and trying again", err.message)
            self.sync_clock(force=True)
            return self._raw(label, fn, **params)

    def _raw(self, label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One request, admitted by the limiter, its failures translated (``from None``: a requests exception names
        the signed URL)."""
        self.limiter.admit(self.max_wait, time.sleep)
        try:
            return fn(*args, **kwargs)
        except BinanceAPIException as exc:
            message = str(exc.message)[:200]
            reason = f"{message} ({exc.code})" if exc.code else f"{message} (HTTP {exc.status_code})"
            status, code = exc.status_code, exc.code
            if status >= 500 or code == BACKEND_TIMEOUT:
                raise OutcomeUnknown(EXCHANGE, f"HTTP {status} on {label}: {reason}", code=code) from None
            if status in (418, 429):
                headers = getattr(exc.response, "headers", None) or {}
                retry_after = retry_after_seconds(headers.get("Retry-After"))
                limited = RateLimited(EXCHANGE, reason, status=status, retry_after=retry_after, code=code)
                self.limiter.note(limited)
                raise limited from None
            raise BadRequest(EXCHANGE, reason, status=status, code=code, msg=message) from None
        except requests.Timeout:
            raise OutcomeUnknown(EXCHANGE, f"timeout on {label}") from None
        except requests.RequestException:
            raise OutcomeUnknown(EXCHANGE, f"connection error on {label}") from None
        except BinanceRequestException:
            raise OutcomeUnknown(EXCHANGE, f"unreadable answer on {label}") from None
