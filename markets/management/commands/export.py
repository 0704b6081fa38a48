"""``manage.py export``: stored ticks or candles of a range to a CSV or Parquet file, with a progress bar."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from markets.export import BATCH, WHAT, ExportError, ExportSummary, export_plan, export_total, history_export
from markets.intervals import INTERVALS
from markets.times import parse_range
from markets.venues import KNOWN_EXCHANGES


class Command(BaseCommand):
    help = (
        "Write the stored ticks or candles of a range to a CSV or Parquet file: the rows and columns the JSON API "
        "answers (/api/v1/ticks, /api/v1/candles?fetch=false), streamed a batch at a time in constant memory. The "
        "file appears only when complete (written as .<name>.<pid>.part beside it, then renamed); an existing file "
        "is replaced only with --force. Reads nothing from the exchange. Times: ISO-8601 (UTC if no zone), epoch "
        "ms, 'now' or '<n>m|h|d ago'."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--what", required=True, help=" or ".join(WHAT))
        parser.add_argument("--exchange", default="binance", help=f"one of {', '.join(KNOWN_EXCHANGES)}")
        parser.add_argument("--symbol", required=True, help="exchange symbol of a stored instrument, e.g. BTCUSDT")
        parser.add_argument("--start", required=True)
        parser.add_argument("--end", default="now")
        parser.add_argument("--interval", help=f"candles only: one of {', '.join(INTERVALS)} (default 1m)")
        parser.add_argument("--format", help="csv or parquet (default: from --out's suffix)")
        parser.add_argument("--out", required=True, help="the file to write; '-' writes csv to stdout")
        parser.add_argument("--force", action="store_true", help="replace --out if it exists")
        parser.add_argument("--batch", type=int, default=BATCH, help=f"rows read and written at a time ({BATCH:,})")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            start, end = parse_range(opts["start"], opts["end"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        to_stdout = opts["out"] == "-"
        out: Any = self.stdout._out if to_stdout else Path(opts["out"])
        fmt = opts["format"] or ("csv" if to_stdout else _format_of(out))
        try:
            plan = export_plan(
                what=opts["what"],
                exchange=opts["exchange"],
                symbol=opts["symbol"],
                start=start,
                end=end,
                interval=opts["interval"],
            )
            label = f"{plan.exchange} {plan.symbol} {plan.what if plan.what == 'ticks' else plan.interval + ' candles'}"
            bar = tqdm(
                total=export_total(plan),
                unit=" rows",
                unit_scale=True,
                disable=opts["no_progress"],
                file=self.stderr._out,
                desc=label,
                dynamic_ncols=True,
            )
            try:
                summary = history_export(
                    plan=plan, fmt=fmt, out=out, force=opts["force"], size=opts["batch"], progress=bar.update
                )
                bar.total = bar.n  # a wider interval's total counts the candles the range can hold, not those stored
                bar.refresh()
            finally:
                bar.close()
        except ExportError as exc:
            raise CommandError(str(exc)) from None
        except KeyboardInterrupt:
            where = "stdout got part of the rows" if to_stdout else f"{out} was not written (one there is as it was)"
            raise CommandError(f"interrupted: {where}") from None
        (self.stderr if to_stdout else self.stdout).write(_summary(label, fmt, summary))


def _format_of(out: Path) -> str:
    suffix = out.suffix.lower().lstrip(".")
    fmt = {"parquet": "parquet", "pq": "parquet", "csv": "csv"}.get(suffix)
    if fmt is None:
        raise CommandError(
            f"--format is needed: {out.name} ends in neither .csv nor .parquet; use --format csv or --format parquet"
        )
    return fmt


def _summary(label: str, fmt: str, s: ExportSummary) -> str:
    rate = s.rows / s.seconds if s.seconds > 0 else 0.0
    where = f"{s.path} ({s.size / 1e6:,.1f} MB)" if s.path else "stdout"
    return f"{label}: {s.rows:,} rows as {fmt} to {where} in {s.seconds:.1f} s ({rate:,.0f} rows/s)"
