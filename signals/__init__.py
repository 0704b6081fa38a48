"""Signals: indicators and BUY/SELL/HOLD decisions on closed candles, stored one per strategy and candle.

Pure cores (``indicators``, ``rules``, ``evaluator``, ``replay``), the stored signals (``models``, ``services``,
``selectors``) and their read API (``api``). The stream's signal listener decides each closed candle with
``services.live_evaluator`` and stores it with ``services.signals_store``; the composition layer (``live``)
attaches it to the stream.

Imports run one way: ``signals`` imports ``markets`` only, never ``orders`` or ``live`` (trading and the
backtest, which act on signals, live in ``orders``).
"""
