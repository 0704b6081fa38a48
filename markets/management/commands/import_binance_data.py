"""``manage.py import_binance_data FILE...``: Binance bulk files into MongoDB, with progress and a summary."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from markets.exchanges.binance_vision import bulk_files
from markets.imports import ImportSummary, binance_files_import
from markets.intervals import INTERVALS


class Command(BaseCommand):
    help = (
        "Import Binance bulk files from data.binance.vision (zip or csv, daily or monthly): klines "
        f"(SYMBOL-1m-DATE.zip; intervals {' '.join(INTERVALS)}) become candles, aggTrades (SYMBOL-aggTrades-DATE.zip) "
        "become ticks, and raw trades (SYMBOL-trades-DATE.zip) become 1m candles built from them: raw trade ids "
        "are not aggregate-trade ids, so raw trades are never stored as ticks. A directory stands for the .zip and "
        ".csv files in it. Safe to rerun: nothing is stored twice."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE", help="a bulk file, or a directory of them")
        parser.add_argument("--symbol", help="exchange symbol to store under (default: from each file name)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            files = bulk_files(opts["files"], symbol=opts["symbol"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        done: list[ImportSummary] = []
        for f in files:
            bar = tqdm(
                unit=" rows",
                unit_scale=True,
                desc=f.path.name,
                disable=opts["no_progress"],
                file=self.stderr._out,
                dynamic_ncols=True,
            )
            try:
                done += binance_files_import(paths=[f.path], symbol=opts["symbol"], progress=bar.update)
            except (ValueError, ArithmeticError, OSError) as exc:
                message = str(exc) if str(f.path) in str(exc) else f"{f.path}: {exc}"
                if done:
                    self.stdout.write(_table(done))
                    message += " (the files listed above are imported)"
                raise CommandError(message) from None
            finally:
                bar.close()
        self.stdout.write(_table(done))


def _table(rows: list[ImportSummary]) -> str:
    head = ("file", "kind", "symbol", "stored as", "rows", "written", "already present")
    body: list[tuple[str, ...]] = [
        (s.path.name, s.kind, s.symbol, s.stored_as, f"{s.rows:,}", f"{s.written:,}", f"{s.already_present:,}")
        for s in rows
    ]
    if len(rows) > 1:
        total = (sum(s.rows for s in rows), sum(s.written for s in rows), sum(s.already_present for s in rows))
        body.append((f"{len(rows)} files", "", "", "", *(f"{n:,}" for n in total)))
    widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head))]
    numeric = range(4, len(head))
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in (head, *body)
    )
