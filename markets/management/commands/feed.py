"""``manage.py feed drop|status``: take a running stream's socket down for a while, or show the feeds."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from markets.control import ControlUnavailable, request_drop
from markets.models import Feed, Gap
from markets.streaming import DROP_MODES
from markets.venues import KNOWN_EXCHANGES


class Command(BaseCommand):
    help = "Control and inspect the live feeds: 'drop' takes the stream's socket down; 'status' lists the feeds."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        drop = sub.add_parser("drop", help="take the socket down for --seconds, as an outage would")
        drop.add_argument("--seconds", type=float, default=10.0)
        drop.add_argument("--exchange", default="binance", choices=KNOWN_EXCHANGES)
        drop.add_argument("--mode", default="close", choices=DROP_MODES)
        status = sub.add_parser("status", help="state, last trade and reconnects of each feed")
        status.add_argument("--exchange", choices=KNOWN_EXCHANGES)

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "drop":
            try:
                request_drop(opts["exchange"], opts["seconds"], opts["mode"])
            except (ValueError, ControlUnavailable) as exc:
                raise CommandError(str(exc).replace("seconds:", "--seconds")) from None
            self.stdout.write(
                f"asked the {opts['exchange']} stream to drop its socket for {opts['seconds']:g} s "
                f"({opts['mode']}); `manage.py feed status` shows it go down and recover"
            )
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
