"""Indicators and BUY/SELL/HOLD signals on closed candles (a later issue)."""
