"""Client order ids derived from the signal an order acts on, so that a retry can never make a second order.

``client_order_id(key, purpose)`` is a pure function of the signal's identity (strategy, exchange, symbol,
interval, candle open time), the trading mode and the order's purpose: the entry, its stop-loss, its take-profit,
the protective order list, or the exit. Sent as Binance's ``newClientOrderId`` (``^[a-zA-Z0-9-_]{1,36}$``) and
stored as the unique key of our order, the same signal acted on twice (a retry after a timeout, a restarted
stream deciding the candle again, two processes) names the same order, which the exchange and the database both
refuse to make twice.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

PURPOSE_CODES = {"entry": "e", "stop_loss": "s", "take_profit": "t", "list": "l", "exit": "x"}
PREFIX = "ts-"


def signal_key(strategy: str, exchange: str, symbol: str, interval: str, open_time: datetime, mode: str) -> str:
    """The identity of a signal in one trading mode, as one string."""
    return "|".join((mode, strategy, exchange, symbol, interval, f"{open_time:%Y-%m-%dT%H:%M:%S}"))


DIGEST = 30  # hex characters of the key's SHA-256: 120 bits


def client_order_id(key: str, purpose: str) -> str:
    """``ts-`` + 30 hex of the key's SHA-256 + the purpose's letter: 34 characters of Binance's alphabet."""
    return f"{PREFIX}{hashlib.sha256(key.encode()).hexdigest()[:DIGEST]}{PURPOSE_CODES[purpose]}"


def is_entry_id(entry_id: str) -> bool:
    """Whether ``entry_id`` is an entry order id of ours (the ids of its position's other orders derive from it)."""
    return entry_id.startswith(PREFIX) and entry_id.endswith(PURPOSE_CODES["entry"])


def sibling_id(entry_id: str, purpose: str, *, attempt: int = 0) -> str:
    """The id of another order of the position ``entry_id`` opened (its protection, its exit); ``attempt`` > 0
    names a protection placed again after the first was cancelled (at most 36 characters up to attempt 9)."""
    if not is_entry_id(entry_id):
        raise ValueError(f"{entry_id!r} is not an entry order id of ours")
    return entry_id[:-1] + PURPOSE_CODES[purpose] + (str(attempt) if attempt else "")
