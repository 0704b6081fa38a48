"""Executors: where approved orders go. Paper (simulated fills) or Binance (signed REST), behind one interface."""
