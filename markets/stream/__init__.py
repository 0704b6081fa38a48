"""The live trade stream of one exchange: as many WebSockets as its symbols need under the venue's rules, idempotent
batched writes, exact gap recovery, a symbol set that may change while it runs, and listeners told what was stored.

Gap detection is by trade id, not by time (ARCHITECTURE §6): per symbol the stream knows the last id it has seen
(on start, the last one stored); a frame whose id jumps past ``last + 1`` opens a ``Gap`` of the ids in between,
which is filled from REST by id pages while live frames keep flowing. Gaps left ``filling`` by a process that
died are filled again on start, so a crash or a restart loses nothing.

The package, by concern:

- ``trade_stream``: ``TradeStream``, which runs the parts below: takes each frame's trades, buffers and flushes
  them, writes the candles that changed every second, and shuts down in order;
- ``sockets``: the symbols spread over sockets (at most the venue's streams per socket), added and removed live;
- ``connection``: one socket's loop, its watchdog, reconnects with back-off, its 24-hour renewal, drops, and its
  subscribes and unsubscribes;
- ``pacing``: the messages sent on a socket, and the connections opened to a venue, kept under its limits;
- ``membership``: the stream's symbol set, and how an added symbol resumes (by id, or from its first live trade);
- ``following``: a source of symbols (the stored instruments) polled and followed with no restart;
- ``recovery``: gaps filled by id from REST, and candles from other venues for what the exchange no longer has;
- ``storage``: the jobs of the one database thread (storing a batch, with back-off on failure; counting, rebuilding
  and writing candles; feed records; what a restart reads back);
- ``candles``: ``LiveCandles``, the 1m candles kept in memory as the ticks are stored (pure);
- ``feeds``: the feed records, written best-effort by a task of their own (the socket never waits for them);
- ``outage``: how a database outage is told (once) and waited out, and the supervision of every long-lived task;
- ``control``: ``feed.drop`` commands received over the channel layer (``markets.control`` sends them);
- ``listeners``: the ``StreamListener`` Protocol and its dispatcher;
- ``config``: ``StreamConfig`` and the per-symbol state.

The stream knows nothing of signals or trading. It announces "ticks stored", "candles written" (the closed ones
flagged) and "feed state changed" to the listeners it was given, each on the thread it asked for (the database
thread, in order right after the work, or a thread of its own); a listener that fails is logged and never stops
the record. The composition layer (``live.wiring``) attaches the signal evaluator and the trader.
"""

from .config import StreamConfig
from .listeners import ListenerContext, ListenerThread, StreamListener
from .trade_stream import TradeStream

__all__ = ["ListenerContext", "ListenerThread", "StreamConfig", "StreamListener", "TradeStream"]
