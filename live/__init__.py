"""The composition layer: the one app that sees markets, signals and orders together.

It holds what joins them and nothing else: the live page and its socket consumers, the stream command that
attaches the signal evaluator and the trader to the stream as listeners, and the routing. ``tradingsite/urls.py``
mounts each app's own API. Nothing below imports from here.
"""
