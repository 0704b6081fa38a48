"""``manage.py feed drop|status|check``: take a running stream's socket down for a while (exit status 1 unless the
stream acknowledges it), show the feeds, or check that they are all live (exit status 1 and one line per stale feed
otherwise: a healthcheck for the stream)."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError
from pymongo.errors import PyMongoError

from markets.control import DROP_MODES, ControlUnavailable, NotAcknowledged, request_drop
from markets.freshness import FeedReport, feed_verdicts
from markets.models import Feed, Gap
from markets.venues import KNOWN_EXCHANGES


class Command(BaseCommand):
    help = (
        "Control and inspect the live feeds: 'drop' takes the stream's socket down; 'status' lists the feeds; "
        "'check' exits non-zero, one line per feed, unless every feed is live and fresh."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        drop = sub.add_parser("drop", help="take the socket down for --seconds, as an outage would")
        drop.add_argument("--seconds", type=float, default=10.0)
        drop.add_argument("--exchange", default="binance", choices=KNOWN_EXCHANGES)
        drop.add_argument("--mode", default="close", choices=DROP_MODES)
        drop.add_argument(
            "--wait",
            type=float,
            default=settings.FEED_CONTROL_ACK_SECONDS,
            help="seconds to wait for the stream to acknowledge (default FEED_CONTROL_ACK_SECONDS)",
        )
        status = sub.add_parser("status", help="state, last trade and reconnects of each feed")
        status.add_argument("--exchange", choices=KNOWN_EXCHANGES)
        check = sub.add_parser("check", help="exit 0 when every feed is live and fresh, 1 naming each one that is not")
        check.add_argument("--exchange", choices=KNOWN_EXCHANGES)
        check.add_argument(
            "--stall-seconds",
            type=float,
            default=settings.FEED_STALL_SECONDS,
            help="a feed without a trade for longer is stale (default FEED_STALL_SECONDS)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "check":
            self.feeds_check(opts["exchange"], opts["stall_seconds"])
            return
        if opts["action"] == "drop":
            self.feed_drop(opts["exchange"], opts["seconds"], opts["mode"], opts["wait"])
            return
        feeds = Feed.objects.all().order_by("exchange", "symbol")
        if opts["exchange"]:
            feeds = feeds.filter(exchange=opts["exchange"])
        if not feeds:
            self.stdout.write("no feeds yet: start one with `manage.py stream`")
            return
        self.stdout.write(
            f"{'feed':<20} {'state':<13} {'last trade id':>14} {'last trade (UTC)':<24} "
            f"{'reconnects':>10}  gaps filling  last error"
        )
        for f in feeds:
            filling = Gap.objects.filter(
                exchange=f.exchange, symbol=f.symbol, kind="trades", state__in=[Gap.State.OPEN, Gap.State.FILLING]
            ).count()
            when = f.last_trade_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if f.last_trade_at else "-"
            self.stdout.write(
                f"{f.exchange + ':' + f.symbol:<20} {f.state:<13} {f.last_trade_id or '-':>14} "
                f"{when:<24} {f.reconnects:>10}  {filling:>12}  {f.last_error[:60]}"
            )

    def feed_drop(self, exchange: str, seconds: float, mode: str, wait: float) -> None:
        """Send the drop and say who acknowledged it; CommandError (exit status 1) when Redis cannot be reached or
        no stream answered within ``wait`` seconds."""
        if wait <= 0:
            raise CommandError(f"--wait must be positive, got {wait:g}")
        try:
            streams = request_drop(exchange, seconds, mode, wait=wait)
        except (ValueError, ControlUnavailable, NotAcknowledged) as exc:
            raise CommandError(str(exc).replace("seconds:", "--seconds")) from None
        who = streams[0] if len(streams) == 1 else f"{len(streams)} streams: {', '.join(streams)}"
        self.stdout.write(
            f"acknowledged by the {exchange} stream ({who}): it will drop its socket for {seconds:g} s ({mode}); "
            "`manage.py feed status` shows it go down and recover"
        )

    def feeds_check(self, exchange: str | None, stall_seconds: float) -> None:
        """Judge every feed the streams report (markets.freshness); CommandError (exit status 1) names each
        stale one, or says that no stream has reported."""
        if stall_seconds <= 0:
            raise CommandError(f"--stall-seconds must be positive, got {stall_seconds:g}")
        feeds = Feed.objects.all()
        if exchange:
            feeds = feeds.filter(exchange=exchange)
        fields = ("exchange", "symbol", "state", "last_trade_at", "updated_at", "last_error")
        try:
            reports = [FeedReport.of(row) for row in feeds.values(*fields)]
        except (PyMongoError, DatabaseError) as exc:
            raise CommandError(f"MongoDB cannot be reached: {type(exc).__name__}") from None
        if not reports:
            where = f"{exchange} " if exchange else ""
            raise CommandError(f"no {where}feed reported: is `manage.py stream` running?")
        verdicts = feed_verdicts(reports, now=datetime.now(UTC), stall_seconds=stall_seconds)
        stale = [v for v in verdicts if not v.fresh]
        if stale:
            raise CommandError("\n".join(f"{v.name}: {v.problem}" for v in stale))
        ages = ", ".join(
            f"{v.name} {'none yet' if v.age_seconds is None else f'{v.age_seconds:.1f} s'}" for v in verdicts
        )  # a connected feed that has seen no trade yet (a quiet symbol) is live too
        self.stdout.write(f"{len(verdicts)} feed{'s' if len(verdicts) > 1 else ''} live (last trade: {ages})")
