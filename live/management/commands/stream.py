"""``manage.py stream``: the live trade streams of one or more exchanges, with exact gap recovery, until Ctrl+C.

Without ``--symbols`` each exchange's stream is a worker that shares the exchange's stored instruments with the
other workers through leases (``markets.stream.leased``): it streams those it holds, rebalanced every
``STREAM_LEASE_RENEW_SECONDS``, and gives them back at a clean stop; ``--no-leases`` streams them all, alone (checked
every ``STREAM_INSTRUMENTS_POLL_SECONDS``). With ``--symbols``, exactly the symbols given. Each stream gets its
listeners from ``live.wiring``: the strategy's signals and, where trading is on, the trader, which trades only
while this worker holds the exchange's trading lease.
"""

from __future__ import annotations

import asyncio
import signal
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from live.wiring import stream_listeners, traded, trades
from markets import metrics
from markets.exchanges.binance.stream import STREAM_KINDS
from markets.exchanges.symbols import as_stored
from markets.leases import lease_book
from markets.stream import StreamConfig, TradeStream
from markets.stream.following import Source, instruments_source
from markets.stream.leased import LeasedSource
from markets.types import TradeTick
from markets.venues import KNOWN_EXCHANGES, rest_adapter, stream_adapter


def latest_trades(exchange: str) -> Callable[[list[str]], dict[str, TradeTick]]:
    """The exchange's latest trade of each symbol (one REST request each), for the symbols a worker takes."""

    def latest(symbols: list[str]) -> dict[str, TradeTick]:
        rest = rest_adapter(exchange)
        try:
            return {s: trades[-1] for s in symbols if (trades := rest.latest_trades(s, 1))}
        finally:
            rest.close()

    return latest


class Command(BaseCommand):
    help = (
        "Stream trades from the exchanges' WebSockets into MongoDB; holes in the trade ids (a dropped "
        "socket, a restart) are filled from REST while the stream goes on. Several exchanges run side by side "
        "in this one process, each with its own sockets (as many as its symbols need under the venue's limits), "
        "storage thread and recovery. Without --symbols each exchange streams its stored instruments and follows "
        "them: one added is streamed within seconds, one removed stops, with no restart. An exchange with no "
        "instrument stored at all streams its default instruments until one is stored; one whose instruments "
        "were all removed streams none (and says so) until one is added. Run it several times, on one host or "
        "many: the workers share each exchange's instruments through leases in MongoDB (a dead worker's are taken "
        "over within STREAM_LEASE_SECONDS plus a round), and exactly one of them trades."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leased: list[LeasedSource] = []  # the workers' lease rounds, one per exchange streamed with leases

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--exchange",
            default="binance",
            help=f"one of {', '.join(KNOWN_EXCHANGES)}, several comma-separated, or 'all'",
        )
        parser.add_argument(
            "--symbols",
            help="comma-separated exchange symbols (one exchange only), streamed as given; default: the exchange's "
            "stored instruments, followed while running (its default instruments while none is stored)",
        )
        parser.add_argument(
            "--no-leases",
            action="store_true",
            help="without --symbols: stream every stored instrument alone, taking no lease (do not run it beside "
            "leased workers of the same exchange: both would stream, and trade, the same symbols)",
        )
        parser.add_argument("--stream", default="aggTrade", choices=STREAM_KINDS, help="Binance's trade stream")
        parser.add_argument(
            "--stall-seconds",
            type=float,
            default=settings.FEED_STALL_SECONDS,
            help="nothing heard (no frame, heartbeat or pong) for this long: the socket is dead (FEED_STALL_SECONDS)",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.STREAM_METRICS_PORT,
            help="serve Prometheus metrics on this port, 0 for none (default STREAM_METRICS_PORT)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        plan = self.plan(opts)
        # the outage buffer's ceiling is the process's: shared out between its streams
        opts["buffer_max_ticks"] = max(1_000, settings.STREAM_BUFFER_MAX_TICKS // len(plan))
        streams = [self.make(exchange, symbols, opts) for exchange, symbols in plan]
        if metrics.serve(opts["metrics_port"], settings.METRICS_ADDR, "stream"):
            self.stdout.write(f"metrics at http://{settings.METRICS_ADDR}:{opts['metrics_port']}/metrics")

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, lambda: [s.stop() for s in streams])
            for s in streams:
                self.stdout.write(self.describe(s))
            self.stdout.write("Ctrl+C stops")
            # one stream's failure never ends the others (each supervises its own tasks; this is the last guard)
            ended = await asyncio.gather(*(s.run() for s in streams), return_exceptions=True)
            for s, error in zip(streams, ended, strict=True):
                if isinstance(error, BaseException):
                    self.stderr.write(f"the {s.config.exchange} stream ended on an error: {error!r}")

        asyncio.run(main())
        self.release()
        self.stdout.write(self.summary(streams))

    def release(self) -> None:
        """A clean stop: every lease given back, so the other workers take these instruments at their next round."""
        for leased in self.leased:
            try:
                given = leased.release()
            except Exception as exc:
                self.stderr.write(
                    f"{leased.exchange}: the leases could not be given back ({type(exc).__name__}: {exc!s:.200}); "
                    "they run out by themselves"
                )
            else:
                self.stdout.write(f"{leased.exchange}: {len(given)} leases given back")

    def summary(self, streams: list[TradeStream]) -> str:
        """The closing line(s): the live trades written in all, and, plainly, any left unwritten because the
        database was still down at shutdown."""
        written = sum(s.written for s in streams)
        unwritten = sum(s.unwritten for s in streams)
        if not unwritten:
            return f"stream stopped; buffered trades written ({written} live trades written in all)"
        return (
            f"stream stopped; {written} live trades written, {unwritten} NOT written: the database was still down "
            "at shutdown. The next start resumes from the last stored trade and recovers them by id from the "
            "exchange (while the exchange still returns them)."
        )

    def describe(self, stream: TradeStream) -> str:
        """The line that says what ``stream`` streams."""
        config = stream.config
        shown = ", ".join(config.symbols[:20]) + (
            f" and {len(config.symbols) - 20} more" if len(config.symbols) > 20 else ""
        )
        if stream.source is None:
            return f"streaming {config.exchange} {shown} from {stream.url}"
        if isinstance(stream.source, LeasedSource):
            book = stream.source.book
            return (
                f"streaming {config.exchange}'s stored instruments that this worker ({book.me}) holds a lease on, "
                f"shared with the other workers: rebalanced every {book.renew_seconds:g} s, leases of "
                f"{book.lease_seconds:g} s"
            )
        return (
            f"streaming {config.exchange}'s stored instruments ({shown or 'none yet'}), checked every "
            f"{config.follow_seconds:g} s for added and removed ones"
        )

    def plan(self, opts: dict[str, Any]) -> list[tuple[str, tuple[str, ...] | None]]:
        """(exchange, symbols) of each stream to run, from the options (symbols None: its stored instruments,
        followed); CommandError naming what is wrong."""
        raw = opts["exchange"].strip().lower()
        exchanges = (
            list(KNOWN_EXCHANGES)
            if raw == "all"
            else list(dict.fromkeys(e.strip() for e in raw.split(",") if e.strip()))
        )
        unknown = [e for e in exchanges if e not in KNOWN_EXCHANGES]
        if not exchanges or unknown:
            raise CommandError(
                f"--exchange must name {', '.join(KNOWN_EXCHANGES)} (comma-separated) or 'all'; "
                f"got {opts['exchange']!r}"
            )
        if opts["stall_seconds"] <= 0:
            raise CommandError("--stall-seconds must be positive")
        if not 0 <= opts["metrics_port"] <= 65535:
            raise CommandError(f"--metrics-port must be a port number (0 for none), got {opts['metrics_port']}")
        if opts["symbols"] is None:
            return [(e, None) for e in exchanges]
        if opts.get("no_leases"):
            raise CommandError("--no-leases is for streaming the stored instruments; --symbols takes no lease anyway")
        if len(exchanges) > 1:
            raise CommandError(
                "--symbols names one exchange's symbols; with several exchanges each streams its stored instruments"
            )
        symbols = tuple(dict.fromkeys(s.strip().upper() for s in opts["symbols"].split(",") if s.strip()))
        bad = [s for s in symbols if not s.replace("-", "").replace("/", "").isalnum()]
        if not symbols or bad:
            raise CommandError(f"--symbols needs exchange symbols such as BTCUSDT,ETHUSDT (got {opts['symbols']!r})")
        try:  # stored as the venue keeps them: Kraken's pair altname however it was written (XBT/USD, BTC/USD)
            symbols = tuple(as_stored(exchanges[0], s) for s in symbols)
        except ValueError as exc:
            raise CommandError(f"--symbols: {exc}") from None
        return [(exchanges[0], symbols)]

    def make(self, exchange: str, symbols: tuple[str, ...] | None, opts: dict[str, Any]) -> TradeStream:
        """The stream of ``exchange``: of ``symbols``, or (None) of its stored instruments, followed."""
        source: Source | None = None
        leased: LeasedSource | None = None
        every = settings.STREAM_INSTRUMENTS_POLL_SECONDS
        if symbols is None and not opts.get("no_leases"):
            # a worker: streamed ∩ held, from lease rounds on their own thread every STREAM_LEASE_RENEW_SECONDS,
            # started once the stream runs (nothing is held during the start-up); their answer is asked for often
            pinned = traded if trades(exchange) else None
            source = leased = LeasedSource(
                exchange,
                instruments_source(exchange),
                lease_book(exchange),
                pinned=pinned,
                latest=latest_trades(exchange),
            )
            every = max(0.1, settings.STREAM_LEASE_RENEW_SECONDS / 4)
            self.leased.append(leased)
            symbols = ()
        elif symbols is None:
            source = instruments_source(exchange)
            try:
                symbols, note = source()
            except Exception as exc:  # the database is down: the stream waits for it, then follows the instruments
                symbols = ()
                note = f"{exchange}: the stored instruments could not be read ({type(exc).__name__}: {exc!s:.200}); "
                note += f"starting with none, read again every {every:g} s"
            if note:
                self.stderr.write(note)
        try:
            feed = stream_adapter(exchange, symbols, kind=opts["stream"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        config = StreamConfig(
            exchange=exchange,
            symbols=symbols,
            stall_seconds=opts["stall_seconds"],
            buffer_max_ticks=opts.get("buffer_max_ticks", settings.STREAM_BUFFER_MAX_TICKS),
            follow_seconds=every,
        )
        try:  # signals → risk → orders (paper without API keys); TRADING_ENABLED=0 or TRADING_EXCHANGES turn it off
            listeners = stream_listeners(exchange, trading_gate=leased.trading if leased is not None else None)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        return TradeStream(config, feed, lambda: rest_adapter(exchange), listeners, source)
