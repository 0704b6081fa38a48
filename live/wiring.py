"""The one place that attaches listeners to a stream: the strategy's signals and, where trading is on, the trader.

``markets.stream`` announces what it stored and wrote; ``signals.listener.SignalListener`` decides each closed
candle and hands its decisions to ``orders.listener.TradingListener``, which acts on them through the trader
``orders.trader.trader_for`` makes for the exchange (none when trading is off or not for that exchange).

With stream workers sharing the instruments (``markets.stream.leased``), the trader of each worker is gated by the
trading lease (``trading_gate``: the fence's ``valid``), and the traded symbols (``traded``) are streamed by the
worker that holds it, so that its signals decide on their candles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from django.conf import settings

from markets.stream import StreamListener
from orders.listener import TradingListener
from orders.trader import trader_for
from signals.listener import DecisionsSubscriber, SignalListener
from signals.rules import Decision


def trades(exchange: str) -> bool:
    """Whether ``exchange``'s stream runs a trader (trading on, and for that exchange)."""
    return settings.TRADING_ENABLED and exchange in settings.TRADING_EXCHANGES


def traded(symbols: tuple[str, ...]) -> frozenset[str]:
    """Of an exchange's streamed ``symbols``, those its trader trades: ``TRADING_SYMBOLS`` when set, else all."""
    chosen = settings.TRADING_SYMBOLS
    return frozenset(s for s in symbols if s in chosen) if chosen else frozenset(symbols)


def stream_listeners(
    exchange: str, *, signals: bool = True, trading_gate: Callable[[], bool] | None = None
) -> list[StreamListener]:
    """The listeners of ``exchange``'s stream, in the order they start: the signals (decided on every closed 1m
    candle, unless ``signals`` is False), then the trader when there is one, acting only while ``trading_gate``
    (default: always) allows and only on the traded symbols. Raises ValueError for a bad TRADING_MODE (see
    ``trader_for``)."""
    trader = trader_for(exchange)
    if trader is not None and trading_gate is not None:
        trader.gate = trading_gate
    trading = TradingListener(trader) if trader is not None else None
    listeners: list[StreamListener] = []
    if signals:
        subscribers = [] if trading is None else [_traded_only(trading.on_decisions, settings.TRADING_SYMBOLS)]
        listeners.append(SignalListener(subscribers))
    if trading is not None:
        listeners.append(trading)
    return listeners


def _traded_only(subscriber: DecisionsSubscriber, chosen: frozenset[str]) -> DecisionsSubscriber:
    """``subscriber`` handed the decisions of the ``chosen`` symbols only (all of them when none is chosen)."""
    if not chosen:
        return subscriber

    def hand(decisions: Mapping[str, list[Decision]], now: datetime) -> None:
        subscriber({s: made for s, made in decisions.items() if s in chosen}, now)

    return hand
