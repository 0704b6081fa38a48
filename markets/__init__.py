"""Market data: instruments, ticks, candles, gaps and feeds."""
