"""Orders on Binance spot: :class:`BinanceExecutor` (see :mod:`.executor` for how its layers split the work)."""

from .executor import BinanceExecutor

__all__ = ["BinanceExecutor"]
