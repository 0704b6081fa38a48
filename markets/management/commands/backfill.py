"""``manage.py backfill``: fetch what MongoDB lacks for a range, with a progress bar and a summary."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from markets.backfill import BackfillSummary, candles_backfill, trades_backfill
from markets.bulk import SOURCES, uses_files
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
        "epoch ms, 'now' or '<n>m|h|d ago'. Trades of whole UTC days before today come from the exchange's public "
        "bulk files where it publishes them (Binance: data.binance.vision, checksums verified), the rest by REST."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--exchange", default="binance", choices=KNOWN_EXCHANGES)
        parser.add_argument("--symbol", required=True, help="exchange symbol, e.g. BTCUSDT")
        parser.add_argument("--start", required=True)
        parser.add_argument("--end", default="now")
        parser.add_argument("--what", choices=("candles", "trades"), default="candles")
        parser.add_argument(
            "--source",
            choices=SOURCES,
            default="auto",
            help="trades: auto (default) = bulk files for whole days where the exchange publishes them, REST for the "
            "rest; files = the same, refused for an exchange without files; rest = REST only",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            start, end = parse_range(opts["start"], opts["end"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        symbol = opts["symbol"].upper()
        trades = opts["what"] == "trades"
        if not trades and opts["source"] != "auto":
            raise CommandError("--source applies to --what trades (candles come from REST)")
        try:
            uses_files(opts["exchange"], opts["source"])
        except ValueError as exc:
            raise CommandError(f"--source {exc}") from None
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

        def downloading(name: str, done: int, total: int | None) -> None:
            of = f" of {total / 1e6:,.1f}" if total else ""
            bar.set_postfix_str(f"{name}: {done / 1e6:,.1f}{of} MB")

        extra = {"source": opts["source"], "on_bytes": downloading} if trades else {}
        run = trades_backfill if trades else candles_backfill
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
                    **extra,
                )
        except InvalidRequest as exc:
            raise CommandError(f"--{exc.field} {exc.message}") from None
        except ExchangeError as exc:
            raise CommandError(f"{exc} (what was fetched before this is stored; rerun to continue)") from None
        finally:
            bar.close()
        self.stdout.write(_summary(summary))


def _summary(s: BackfillSummary) -> str:
    trades = s.what == "trades"
    unit = "trade ids" if trades else "1m candles"
    got, by = s.from_files + s.fetched, "by REST " if trades else ""
    rate = f"{got / s.seconds:,.0f}" if s.seconds > 0 else "0"
    files = f"{s.files} file{'s' if s.files != 1 else ''}"
    unpublished = (
        f"; {s.unpublished} day{'s' if s.unpublished != 1 else ''} not published: REST" if s.unpublished else ""
    )
    return "\n".join(
        [
            f"{s.exchange} {s.symbol} {s.what} {s.start:%Y-%m-%d %H:%M:%S} .. {s.end:%Y-%m-%d %H:%M:%S} UTC",
            f"  in range        {s.expected:>12,} {unit}",
            f"  already present {s.already_present:>12,}",
            *(
                [f"  from files      {s.from_files:>12,}  ({files}, {s.file_bytes / 1e6:,.1f} MB{unpublished})"]
                if trades and (s.files or s.unpublished)
                else []
            ),
            f"  fetched         {s.fetched:>12,}  {by}({s.requests} requests, {s.seconds:.1f} s)",
            f"  newly stored    {s.written:>12,}",
            f"  still missing   {s.still_missing:>12,}",
            *(
                [
                    f"  1m candles      {s.candles:>12,}  ({s.quiet:,} quiet: flat, synthetic)",
                    f"  rate            {rate:>12} trades/s  ({got:,} in {s.seconds:.1f} s, "
                    f"{s.candle_seconds:.1f} s of it building candles)",
                ]
                if trades
                else []
            ),
        ]
    )
