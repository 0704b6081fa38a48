"""The one place that attaches listeners to a stream: the strategy's signals and, where trading is on, the trader.

``markets.stream`` announces what it stored and wrote; ``signals.listener.SignalListener`` decides each closed
candle and hands its decisions to ``orders.listener.TradingListener``, which acts on them through the trader
``orders.trader.trader_for`` makes for the exchange (none when trading is off or not for that exchange).
"""

from __future__ import annotations

from markets.stream import StreamListener
from orders.listener import TradingListener
from orders.trader import trader_for
from signals.listener import SignalListener


def stream_listeners(exchange: str, *, signals: bool = True) -> list[StreamListener]:
    """The listeners of ``exchange``'s stream, in the order they start: the signals (decided on every closed 1m
    candle, unless ``signals`` is False), then the trader when there is one. Raises ValueError for a bad
    TRADING_MODE (see ``trader_for``)."""
    trader = trader_for(exchange)
    trading = TradingListener(trader) if trader is not None else None
    listeners: list[StreamListener] = []
    if signals:
        listeners.append(SignalListener([trading.on_decisions] if trading is not None else []))
    if trading is not None:
        listeners.append(trading)
    return listeners
