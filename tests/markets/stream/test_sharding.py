"""Symbols spread over sockets: as many a socket as the venue allows, sockets with room filled first, a new socket
only when none has room; and what each Binance socket is told (its URL and its SUBSCRIBE messages). Nothing here
connects."""

from __future__ import annotations

import asyncio
import json

import pytest

from markets.exchanges.binance.stream import PARAMS_PER_MESSAGE, URL_STREAMS, BinanceStream
from markets.exchanges.coinbase.stream import CoinbaseStream
from markets.exchanges.kraken.stream import KrakenStream
from markets.stream import StreamConfig
from markets.stream.sockets import SocketPool, place

SYMBOLS = [f"S{i:04d}USDT" for i in range(2500)]


def test_2500_symbols_take_3_binance_sockets() -> None:
    """At Binance's 1,024 streams a socket: 1,024 + 1,024 + 452."""
    onto, fresh = place(SYMBOLS, [], 1024)
    assert onto == {}
    assert [len(share) for share in fresh] == [1024, 1024, 452]
    assert [s for share in fresh for s in share] == SYMBOLS


def test_sockets_with_room_are_filled_first_in_order() -> None:
    """New symbols go onto the first sockets with room; a new socket only for what is left."""
    onto, fresh = place(["A", "B", "C", "D", "E", "F", "G"], [3, 4, 1], 4)
    assert onto == {0: ["A"], 2: ["B", "C", "D"]}
    assert fresh == [["E", "F", "G"]]
    assert place(["A"], [4, 2], 4) == ({1: ["A"]}, [])


def test_a_socket_must_carry_one_symbol_at_least() -> None:
    with pytest.raises(ValueError, match="at least one symbol"):
        place(["A"], [], 0)


def pool(symbols: list[str], per_socket: int | None = None) -> SocketPool:
    config = StreamConfig("binance", (), streams_per_socket=per_socket)

    async def state(state: str, reason: str) -> None:
        pass

    p = SocketPool(config, BinanceStream("ws://unused", ()), lambda m: None, state, asyncio.Event())
    p.add(symbols)
    return p


def test_a_pool_of_2500_binance_symbols_has_3_sockets() -> None:
    """The venue's own limit applies when the config sets none."""
    p = pool(SYMBOLS)
    assert [len(c.symbols) for c in p.sockets] == [1024, 1024, 452]
    assert p.socket_of(SYMBOLS[1024]) is p.sockets[1]


def test_a_small_limit_for_tests_and_symbols_added_and_removed() -> None:
    """With 2 a socket: 5 symbols take 3 sockets; one added goes onto the third (it has room); removing both
    symbols of a socket closes it, and the next symbol goes onto the socket with room."""
    p = pool(["A", "B", "C", "D", "E"], per_socket=2)
    assert [c.symbols for c in p.sockets] == [["A", "B"], ["C", "D"], ["E"]]
    p.add(["F"])
    assert [c.symbols for c in p.sockets] == [["A", "B"], ["C", "D"], ["E", "F"]]
    first = p.sockets[0]
    p.remove(["A", "B", "X"])  # X was never streamed: nothing to do
    assert first not in p.sockets
    assert first._retired
    assert [c.symbols for c in p.sockets] == [["C", "D"], ["E", "F"]]
    p.remove(["D"])
    p.add(["G", "H"])
    assert [c.symbols for c in p.sockets] == [["C", "G"], ["E", "F"], ["H"]]
    assert sorted(p.symbols) == ["C", "E", "F", "G", "H"]


def test_a_binance_socket_of_1024_streams_opens_with_100_and_subscribes_the_rest() -> None:
    """The URL names the first 100 streams (a request line stays a few KB); the other 924 go in SUBSCRIBE messages
    of at most 200 streams, each with its own id; added and removed ones likewise."""
    share = BinanceStream("wss://stream.binance.com:9443", ()).for_symbols(tuple(SYMBOLS[:1024]))
    url = share.url()
    assert url.count("@aggTrade") == URL_STREAMS
    assert url.startswith("wss://stream.binance.com:9443/stream?streams=")
    messages = [json.loads(m) for m in share.subscribe()]
    assert [len(m["params"]) for m in messages] == [200, 200, 200, 200, 124]
    assert all(m["method"] == "SUBSCRIBE" for m in messages)
    assert [p for m in messages for p in m["params"]] == [f"{s.lower()}@aggTrade" for s in SYMBOLS[100:1024]]
    assert len({m["id"] for m in messages}) == len(messages)
    assert max(len(m["params"]) for m in messages) <= PARAMS_PER_MESSAGE
    assert json.loads(share.unsubscribe_from(["BTCUSDT"])[0])["params"] == ["btcusdt@aggTrade"]
    assert BinanceStream("ws://x", ("BTCUSDT",)).subscribe() == [], "a few symbols: the URL says it all"


def test_coinbase_and_kraken_subscribe_and_unsubscribe_messages() -> None:
    """Coinbase names products and channels; Kraken the pairs as its socket spells them (BTC/USD)."""
    coinbase = CoinbaseStream("ws://x", ())
    assert json.loads(coinbase.subscribe_to(["ETH-USD"])[0]) == {
        "type": "subscribe",
        "product_ids": ["ETH-USD"],
        "channels": ["matches", "heartbeat"],
    }
    assert json.loads(coinbase.unsubscribe_from(["ETH-USD"])[0])["type"] == "unsubscribe"
    kraken = KrakenStream("ws://x", ("XBTUSD",))
    sub = json.loads(kraken.for_symbols(("ETHUSD",)).subscribe()[0])
    assert sub["method"] == "subscribe"
    assert sub["params"] == {
        "channel": "trade",
        "symbol": ["ETH/USD"],
        "snapshot": True,
    }
    off = json.loads(kraken.unsubscribe_from(["XBTUSD"])[0])
    assert off["method"] == "unsubscribe"
    assert off["params"] == {"channel": "trade", "symbol": ["BTC/USD"]}
