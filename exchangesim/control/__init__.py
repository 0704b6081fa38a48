"""The control API under ``/_sim/``: break things on purpose, steer the market, read the truth.

Every request names a venue with ``venue`` (default ``"binance"``) and, where it acts on one symbol,
the venue's own symbol name (``BTCUSDT``, ``BTC-USD``).
"""

from .api import Control
from .inputs import ControlError

__all__ = ["Control", "ControlError"]
