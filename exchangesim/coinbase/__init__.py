"""Coinbase Exchange lookalike (REST and the WebSocket feed), mounted under ``/coinbase``."""
