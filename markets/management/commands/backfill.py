"""``manage.py backfill``: fetch what MongoDB lacks for a range, with a progress bar and a summary."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from markets.backfill import BackfillSummary, candles_backfill, trades_backfill
from markets.exchanges.errors import ExchangeError
from markets.history import InvalidRequest
from markets.leases.holds import backfill_held
from markets.times import parse_range
from markets.venues import KNOWN_EXCHANGES, rest_adapter


class Command(BaseCommand):
    help = (
        "Fetch trades (aggregate trades on Binance; their 1m candles are then built from them) or 1m candles of a "
        "time range from the exchange, "
        "skipping what is already stored. Safe to interrupt and rerun. Times: ISO-8601 (UTC if no zone), "
        "epoch ms, 'now' or '<n>m|h|d ago'."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--exchange", default="binance", choices=KNOWN_EXCHANGES)
        parser.add_argument("--symbol", required=True, help="exchange symbol, e.g. BTCUSDT")
        parser.add_argument("--start", required=True)
        parser.add_argument("--end", default="now")
        parser.add_argument("--what", choices=("candles", "trades"), default="candles")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            start, end = parse_range(opts["start"], opts["end"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        symbol = opts["symbol"].upper()
        unit = "trades" if opts["what"] == "trades" else "candles"
        bar = tqdm(
            total=0,
            unit=f" {unit}",
            unit_scale=True,
            disable=opts["no_progress"],
            file=self.stderr._out,
            desc=f"{opts['exchange']} {symbol} {unit}",
            dynamic_ncols=True,
        )

        def plan(n: int) -> None:
            bar.reset(total=n)

        def waiting(seconds: float, reason: str) -> None:
            bar.set_postfix_str(f"waiting {seconds:.1f} s: {reason}")

        run = trades_backfill if opts["what"] == "trades" else candles_backfill
        held = backfill_held(
            f"manage.py backfill {unit}", exchange=opts["exchange"], symbol=symbol, start=start, end=end
        )
        try:
            adapter = rest_adapter(opts["exchange"], on_wait=waiting)
            with held:  # the gap scan leaves what this run fills to it (markets/leases/holds.py)
                summary = run(
                    adapter=adapter,
                    exchange=opts["exchange"],
                    symbol=symbol,
                    start=start,
                    end=end,
                    progress=bar.update,
                    on_plan=plan,
                )
        except InvalidRequest as exc:
            raise CommandError(f"--{exc.field} {exc.message}") from None
        except ExchangeError as exc:
            raise CommandError(f"{exc} (what was fetched before this is stored; rerun to continue)") from None
        finally:
            bar.close()
        self.stdout.write(_summary(summary))


def _summary(s: BackfillSummary) -> str:
    unit = "trade ids" if s.what == "trades" else "1m candles"
    return "\n".join(
        [
            f"{s.exchange} {s.symbol} {s.what} {s.start:%Y-%m-%d %H:%M:%S} .. {s.end:%Y-%m-%d %H:%M:%S} UTC",
            f"  in range        {s.expected:>12,} {unit}",
            f"  already present {s.already_present:>12,}",
            f"  fetched         {s.fetched:>12,}  ({s.requests} requests, {s.seconds:.1f} s)",
            f"  newly stored    {s.written:>12,}",
            f"  still missing   {s.still_missing:>12,}",
            *(
                [f"  1m candles      {s.candles:>12,}  ({s.quiet:,} quiet: flat, synthetic)"]
                if s.what == "trades"
                else []
            ),
        ]
    )
