"""``manage.py instruments add|remove|list``: the instruments the stream workers stream, changed while they run."""

from __future__ import annotations

import re
from argparse import ArgumentParser
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from markets import selectors
from markets.listing import (
    Added,
    HistoryQueued,
    InstrumentRefused,
    Lookup,
    history_queue,
    instruments_add,
    instruments_remove,
    instruments_stream,
    instruments_trading,
)
from markets.times import parse_time
from markets.venues import KNOWN_EXCHANGES

NAMED = 12  # symbols named in a line before "and N more"
_SPAN = re.compile(r"[0-9]{1,6}\s*[mhd]")


class Command(BaseCommand):
    help = (
        "add EXCHANGE SYMBOLS (comma-separated) or add EXCHANGE --all [--quote USDT]: store them with the exchange's "
        "own data and stream them from now on (a running stream picks them up). --since 24h (or an ISO time) "
        "queues their history from then for the Celery worker; without it their record starts at their first live "
        "trade. Symbols the exchange does not list are refused by name, the others are still added, and the "
        "command then exits non-zero. remove EXCHANGE SYMBOLS: stop streaming them, keeping their record and "
        "stored data (add them again to resume). list [--exchange X]: the stored instruments."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="add|remove|list")
        add = actions.add_parser("add", help="store instruments and stream them")
        add.add_argument("exchange", choices=KNOWN_EXCHANGES)
        add.add_argument("symbols", nargs="*", help="the exchange's symbols, comma- or space-separated")
        add.add_argument("--all", action="store_true", help="every instrument the exchange lists as trading")
        add.add_argument("--quote", help="with --all: only those quoted in this asset (USDT, USD)")
        add.add_argument("--since", help="backfill their history from then: 24h, 90m, 7d, or an ISO-8601 time")
        add.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
        remove = actions.add_parser("remove", help="stop streaming instruments, keeping their data")
        remove.add_argument("exchange", choices=KNOWN_EXCHANGES)
        remove.add_argument("symbols", nargs="+", help="the exchange's symbols, comma- or space-separated")
        listing = actions.add_parser("list", help="the stored instruments")
        listing.add_argument("--exchange", choices=KNOWN_EXCHANGES)

    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts["action"]
        if action == "list":
            self.show(opts["exchange"])
            return
        symbols = [s for arg in opts["symbols"] for s in arg.split(",") if s.strip()]
        try:
            if action == "remove":
                self.remove(opts["exchange"], symbols)
            else:
                self.add(opts, symbols)
        except InstrumentRefused as exc:
            raise CommandError(str(exc)) from None

    def add(self, opts: dict[str, Any], symbols: list[str]) -> None:
        exchange = opts["exchange"]
        if opts["all"] == bool(symbols):
            raise CommandError("give the symbols to add, or --all (not both)")
        if opts["quote"] and not opts["all"]:
            raise CommandError("--quote filters --all; name the symbols instead")
        since = _since(opts["since"]) if opts["since"] else None
        bar = tqdm(
            total=len(symbols) or None,
            unit=" instruments",
            disable=opts["no_progress"],
            file=self.stderr._out,
            desc=f"{exchange} instruments",
            dynamic_ncols=True,
        )
        try:
            if opts["all"]:
                listed = instruments_trading(exchange=exchange, quote=opts["quote"])
                bar.reset(total=len(listed))
                added = instruments_stream(instruments=listed, progress=bar.update)
            else:
                added = instruments_add(exchange=exchange, symbols=symbols, progress=bar.update)
        finally:
            bar.close()
        self.stdout.write(_added(exchange, added, opts["quote"] if opts["all"] else None))
        queued = None
        if since is not None and (wanted := added.added + added.already):
            queued = history_queue(exchange=exchange, symbols=wanted, since=since)
            self.stdout.write(_queued(exchange, queued))
        problems = [f"refused: {Lookup(exchange, (), added.unknown).refusal()}"] if added.unknown else []
        if queued is not None and queued.problem:
            problems.append(f"history not queued: {queued.problem}")
        if problems:
            raise CommandError("; ".join(problems) + f" (added: {_names(added.added) or 'none'})")

    def remove(self, exchange: str, symbols: list[str]) -> None:
        removed = instruments_remove(exchange=exchange, symbols=symbols)
        parts = [f"{len(removed.removed)} removed{_listed(removed.removed)}"]
        if removed.already:
            parts.append(f"{len(removed.already)} already removed{_listed(removed.already)}")
        self.stdout.write(f"{exchange}: {', '.join(parts)}; their stored trades and candles are kept")
        if removed.unknown:
            verb = "is" if len(removed.unknown) == 1 else "are"
            raise CommandError(
                f"{_names(removed.unknown)} {verb} not a stored {exchange} instrument (removed: "
                f"{_names(removed.removed) or 'none'})"
            )

    def show(self, exchange: str | None) -> None:
        rows = [("exchange", "symbol", "canonical", "status", "streamed", "last stored trade (UTC)")]
        for i in selectors.instrument_list(exchange=exchange):
            last = selectors.recent_ticks(exchange=i.exchange, symbol=i.symbol, limit=1)
            trade = f"{last[0].ts:%Y-%m-%d %H:%M:%S} #{last[0].trade_id}" if last else "none"
            rows.append((i.exchange, i.symbol, i.canonical, i.status, "yes" if i.streamed else "no", trade))
        if len(rows) == 1:
            self.stdout.write(f"no instruments stored{f' for {exchange}' if exchange else ''}")
            return
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        for r in rows:
            self.stdout.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _since(text: str) -> datetime:
    """``--since``: 24h / 90m / 7d (that long ago), or a time ``parse_time`` reads; it must be in the past."""
    value = text.strip()
    now = datetime.now(UTC)
    try:
        since = parse_time(f"{value} ago" if _SPAN.fullmatch(value) else value, now=now)
    except ValueError as exc:
        raise CommandError(f"--since {exc}") from None
    if since >= now:
        raise CommandError(f"--since {since:%Y-%m-%d %H:%M:%S} UTC is not in the past")
    return since


def _added(exchange: str, added: Added, quote: str | None) -> str:
    of = f" (every trading instrument quoted in {quote.upper()})" if quote else ""
    parts = [f"{len(added.new)} added{_listed(added.new)}"]
    if added.again:
        parts.append(f"{len(added.again)} streamed again{_listed(added.again)}")
    if added.already:
        parts.append(f"{len(added.already)} already streamed{_listed(added.already)}")
    return f"{exchange}{of}: {', '.join(parts)}"


def _queued(exchange: str, q: HistoryQueued) -> str:
    head = f"{exchange}: history from {q.since:%Y-%m-%d %H:%M:%S} UTC"
    if q.problem:
        return (
            f"{head} NOT queued ({q.problem}); their record starts at their first live trade. Queued before the "
            f"failure: {_names(q.queued) or 'none'}. Fill it by hand with manage.py backfill --what trades "
            f"--exchange {exchange} --symbol SYMBOL --start {q.since:%Y-%m-%dT%H:%M:%SZ}"
        )
    if q.workers:
        return f"{head} queued for {_names(q.queued)}; {q.workers} Celery worker(s) answered and will fill it"
    return (
        f"{head} queued for {_names(q.queued)}, but no Celery worker answered within a second: the backfill waits "
        "in the queue until one runs (celery -A tradingsite worker, or make run)"
    )


def _listed(symbols: Sequence[str]) -> str:
    return f" ({_names(symbols)})" if symbols else ""


def _names(symbols: Sequence[str]) -> str:
    shown = ", ".join(symbols[:NAMED])
    return shown + (f" and {len(symbols) - NAMED} more" if len(symbols) > NAMED else "")
