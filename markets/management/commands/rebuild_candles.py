"""``manage.py rebuild_candles``: the 1m candles of a range rebuilt from the stored ticks, with a progress bar."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from markets.intervals import ceil, count, floor
from markets.rebuild import RebuildSummary, candles_from_ticks
from markets.times import parse_range
from markets.venues import KNOWN_EXCHANGES


class Command(BaseCommand):
    help = (
        "Rebuild the 1m candles of a range of whole minutes from the ticks stored for it, however old: each minute "
        "with ticks gets the candle of its trades, and each quiet minute between two consecutive trade ids a flat, "
        "zero-volume candle flagged synthetic. A stored candle that disagrees is replaced; minutes without ticks "
        "in an id hole are left alone. Reads nothing from the exchange. Safe to rerun. Times: ISO-8601 (UTC if no "
        "zone), epoch ms, 'now' or '<n>m|h|d ago'."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--exchange", default="binance", help=f"one of {', '.join(KNOWN_EXCHANGES)}")
        parser.add_argument("--symbol", required=True, help="exchange symbol, e.g. BTCUSDT")
        parser.add_argument("--start", required=True)
        parser.add_argument("--end", default="now")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    def handle(self, *args: Any, **opts: Any) -> None:
        exchange, symbol = opts["exchange"], opts["symbol"].strip().upper()
        if exchange not in KNOWN_EXCHANGES:
            raise CommandError(f"--exchange {exchange!r} is not a known exchange; known: {', '.join(KNOWN_EXCHANGES)}")
        if not symbol:
            raise CommandError("--symbol is empty; give an exchange symbol, e.g. BTCUSDT")
        try:
            start, end = parse_range(opts["start"], opts["end"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        bar = tqdm(
            total=count(floor(start, "1m"), ceil(end, "1m"), "1m"),
            unit=" minutes",
            unit_scale=True,
            disable=opts["no_progress"],
            file=self.stderr._out,
            desc=f"{exchange} {symbol} 1m candles",
            dynamic_ncols=True,
        )
        try:
            summary = candles_from_ticks(exchange=exchange, symbol=symbol, start=start, end=end, progress=bar.update)
        finally:
            bar.close()
        self.stdout.write(_summary(summary))


def _summary(s: RebuildSummary) -> str:
    return "\n".join(
        [
            f"{s.exchange} {s.symbol} 1m candles {s.start:%Y-%m-%d %H:%M} .. {s.end:%Y-%m-%d %H:%M} UTC",
            f"  minutes in range {s.minutes:>12,}",
            f"  ticks read       {s.ticks:>12,}",
            f"  traded minutes   {s.traded:>12,}",
            f"  quiet minutes    {s.quiet:>12,}  (flat, synthetic)",
            f"  candles new      {s.new:>12,}  (the others replaced the stored ones)",
            f"  without candle   {s.minutes - s.candles:>12,}  (no tick, and not between consecutive ids)",
        ]
    )
