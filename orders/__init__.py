"""Orders: trading on signals — the risk check, the executors (paper and Binance), orders, fills and positions,
the trader that acts on each decision, and the backtest.

Pure cores (``risk``, ``paper``, ``backtest``), the executors, the stored records with their services and
selectors, and the trading API. The backtest (``backtest``, ``backtest_run``, ``backtest_chart`` and the
``manage.py backtest`` command) replays stored candles through the strategy of ``signals`` and the same risk
check and paper arithmetic as live paper trading.

Imports run one way: ``orders`` imports ``signals`` and ``markets``, never ``live`` (the composition layer above
it, which attaches the trader to the stream and mounts the pages).
"""
