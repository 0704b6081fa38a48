"""Requests to the history API shared by its tests: the day they ask about, a candles and a ticks query, and
a JSON GET that checks the status and the content type.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.test import Client

T0 = datetime(2025, 6, 2, tzinfo=UTC)  # a past Monday: every candle of it can exist
MINUTE = timedelta(minutes=1)
CANDLES = {
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "interval": "1m",
    "start": "2025-06-02T00:00:00Z",
    "end": "2025-06-02T01:00:00Z",
    "fetch": "false",
}
TICKS = {"exchange": "binance", "symbol": "BTCUSDT"}


def get_json(client: Client, path: str, params: dict[str, Any] | None = None, status: int = 200) -> Any:
    """GET ``path`` with ``params``: the JSON body, after checking the status and that it is JSON."""
    response = client.get(path, params or {})
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()
