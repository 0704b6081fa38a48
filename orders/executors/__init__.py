"""Executors: where approved orders go. Paper (simulated fills) or Binance (signed REST), behind one interface.

Which one manages a record is decided here, from the exchange registry's ``signed_orders`` capability and the
configured keys (``markets.venues.signed_orders_ready``), never from the exchange's name.
"""

from __future__ import annotations

from django.conf import settings

from markets.venues import signed_orders_ready

from .base import ExecutionError, Executor


def executor_of(mode: str, exchange: str) -> Executor:
    """The executor that manages records of ``mode`` (a staff action on a paper position stays on paper even
    when keys have been set since). Signed modes (testnet, live) need a venue that takes signed orders, with its
    keys."""
    if mode == "paper":
        from .paper import PaperExecutor

        return PaperExecutor(exchange)
    if not signed_orders_ready(exchange):
        raise ExecutionError(f"{mode} orders on {exchange} need BINANCE_API_KEY and BINANCE_API_SECRET")
    from .binance import BinanceExecutor

    return BinanceExecutor(mode=mode)


def executor_for(exchange: str) -> Executor:
    """The venue's signed API when it takes signed orders and its keys are set (TRADING_MODE testnet or live);
    else paper trading."""
    return executor_of(settings.TRADING_MODE if signed_orders_ready(exchange) else "paper", exchange)
