"""Kraken Spot lookalike (public REST ``/0/public/*`` and WebSocket v2), mounted under ``/kraken``."""
