"""Binance Spot's wire protocol (REST under /api/v3, WebSocket streams) over the market engine."""
