"""A local exchange that speaks Binance's wire protocol, replays recorded markets and injects faults.

No Django here: the simulator must not share the client's parsing (both could be wrong together).
"""
