"""Risk checks, orders, fills and positions (a later issue)."""
