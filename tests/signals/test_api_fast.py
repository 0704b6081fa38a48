"""``/api/v1/signals`` answers from output-shaped reads (signals/reads.py): the same rows, in the same order and
pages, as the serializer of the schema (``SignalOut``) makes of the selector's model instances."""

from __future__ import annotations

import pytest

from signals.api import SignalOut
from signals.reads import signal_rows
from signals.selectors import signal_page
from tests.signals.test_api import stored  # noqa: F401  (the fixture)
from tests.signals.walks import MINUTE, T0


@pytest.mark.django_db
@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    "query",
    [
        {"limit": 500},
        {"limit": 4, "decisions": ["BUY", "SELL", "HOLD"]},
        {"limit": 3, "interval": "5m", "decisions": ["BUY", "SELL"]},
        {"limit": 2, "start": T0 + 5 * MINUTE, "end": T0 + 20 * MINUTE, "decisions": ["HOLD"]},
    ],
)
def test_rows_equal_the_serializer_pages(query: dict) -> None:
    """Walking every page by its cursor gives the serializer's rows, field order included."""
    after = None
    while True:
        fast = signal_rows(exchange="binance", symbol="BTCUSDT", after=after, **query)
        slow = signal_page(exchange="binance", symbol="BTCUSDT", after=after, **query)
        want = [dict(r) for r in SignalOut(slow.signals, many=True).data]
        assert fast.rows == want
        assert [list(r) for r in fast.rows] == [list(r) for r in want]
        assert fast.next == slow.next
        if fast.next is None:
            break
        after = fast.next
