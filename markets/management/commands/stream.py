"""``manage.py stream``: the live trade stream of one exchange, with exact gap recovery, until Ctrl+C."""

from __future__ import annotations

import asyncio
import signal
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from markets.exchanges.binance.stream import STREAM_KINDS
from markets.streaming import StreamConfig, TradeStream
from markets.venues import KNOWN_EXCHANGES, rest_adapter, stream_adapter


class Command(BaseCommand):
    help = ("Stream trades from the exchange's WebSocket into MongoDB; holes in the trade ids (a dropped "
            "socket, a restart) are filled from REST while the stream goes on.")

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--exchange", default="binance", choices=KNOWN_EXCHANGES)
        parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT", help="comma-separated exchange symbols")
        parser.add_argument("--stream", default="aggTrade", choices=STREAM_KINDS)
        parser.add_argument("--stall-seconds", type=float, default=settings.FEED_STALL_SECONDS,
                            help="no frame for this long means the socket is dead (default FEED_STALL_SECONDS)")

    def handle(self, *args: Any, **opts: Any) -> None:
        symbols = tuple(dict.fromkeys(s.strip().upper() for s in opts["symbols"].split(",") if s.strip()))
        bad = [s for s in symbols if not s.isalnum()]
        if not symbols or bad:
            raise CommandError(f"--symbols needs exchange symbols such as BTCUSDT,ETHUSDT (got {opts['symbols']!r})")
        if opts["stall_seconds"] <= 0:
            raise CommandError("--stall-seconds must be positive")
        config = StreamConfig(exchange=opts["exchange"], symbols=symbols, stall_seconds=opts["stall_seconds"])
        try:
            feed = stream_adapter(opts["exchange"], symbols, kind=opts["stream"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        stream = TradeStream(config, feed, lambda: rest_adapter(opts["exchange"]))

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stream.stop)
            self.stdout.write(f"streaming {', '.join(symbols)} from {stream.url}; Ctrl+C stops")
            await stream.run()

        asyncio.run(main())
        self.stdout.write("stream stopped; buffered trades written")
