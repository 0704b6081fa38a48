"""Signals as the live page shows them: a decision just made, or a stored Signal, in one shape.

The stream's signal listener sends ``{"type": "market.signals", "data": {"signals": [...]}}`` to the symbol's
``markets.live.market_group``; the page's consumer puts the stored ones in its snapshot. Times are epoch
milliseconds (UTC).
"""

from __future__ import annotations

from typing import Any

from markets.documents import to_ms

from .rules import Decision

SIGNALS_EVENT = "market.signals"


def signal_data(d: Decision) -> dict[str, Any]:
    """A decision for the page: the candle it was made on, what, how sure, and why."""
    return {
        "time": to_ms(d.open_time),
        "decision": str(d.action),
        "confidence": str(d.confidence),
        "strategy": f"{d.strategy} v{d.version}",
        "reasons": list(d.reasons),
    }


def signal_row_data(row: Any) -> dict[str, Any]:
    """A stored Signal for the page, in the shape of :func:`signal_data`."""
    return {
        "time": to_ms(row.candle_open_time),
        "decision": row.decision,
        "confidence": str(row.confidence),
        "strategy": f"{row.strategy} v{row.version}",
        "reasons": list(row.reasons),
    }
