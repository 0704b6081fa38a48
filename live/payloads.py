"""The page's prices and quantities printed by the one rule (``markets.numbers.plain``) before they leave the server:
the browser shows each string as it comes (a JavaScript Number would lose exactness). Prices and quote amounts
to the instrument's tick, base quantities to its step, profit and loss without trailing zeros
(``markets.places.priced``). Trades and candles here; positions and orders in ``orders.live``."""

from __future__ import annotations

from markets.places import Memo, known, priced, priced_rows
from orders.live import ORDER_NUMBERS as ORDER
from orders.live import POSITION_NUMBERS as POSITION

PRICE, QTY = "price", "qty"
TRADE = {"price": PRICE, "qty": QTY}
CANDLE = {"open": PRICE, "high": PRICE, "low": PRICE, "close": PRICE, "volume": QTY}

__all__ = ["CANDLE", "ORDER", "POSITION", "TRADE", "Memo", "known", "priced", "priced_rows"]
