"""``manage.py backtest``: replay past candles through the strategy and a paper position; a summary and a PNG."""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from markets.exchanges.errors import ExchangeError
from markets.history import InvalidRequest
from markets.intervals import INTERVALS
from markets.times import parse_range
from markets.venues import KNOWN_EXCHANGES
from signals.backtest import DEFAULT_CASH, DEFAULT_FEE
from signals.chart import equity_png
from signals.rules import STRATEGY, VERSION
from signals.services import BacktestRun, backtest_run


def percent(text: str) -> Decimal:
    """A fee in percent (``0.1`` is 0.1 %) as a fraction."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ArgumentTypeError(f"{text!r} is not a number of percent (0.1 means 0.1 %)") from None
    if not value.is_finite() or not 0 <= value < 100:
        raise ArgumentTypeError(f"{text} is not a fee from 0 to below 100 (percent)")
    return value / 100


def amount(text: str) -> Decimal:
    """A positive amount of the quote asset."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ArgumentTypeError(f"{text!r} is not an amount") from None
    if not value.is_finite() or value <= 0:
        raise ArgumentTypeError(f"{text} is not a positive amount")
    return value


class Command(BaseCommand):
    help = ("Replay the candles of a time range through the signal strategy (the same code as the live stream) "
            "and a long-only paper position: buy all-in on BUY, sell on SELL, a fee on each fill. Candles come "
            "from MongoDB first, the exchange for what is missing (stored). Prints a summary and writes an "
            "equity-curve PNG. Times: ISO-8601 (UTC if no zone), epoch ms, 'now' or '<n>m|h|d ago'.")

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--exchange", default="binance", choices=KNOWN_EXCHANGES)
        parser.add_argument("--symbol", required=True, help="exchange symbol, e.g. BTCUSDT")
        parser.add_argument("--start", required=True)
        parser.add_argument("--end", default="now")
        parser.add_argument("--interval", default="1m", choices=list(INTERVALS))
        parser.add_argument("--fee", type=percent, default=DEFAULT_FEE,
                            help=f"fee per fill in percent of its notional (default {_pct(DEFAULT_FEE)} %%)")
        parser.add_argument("--cash", type=amount, default=DEFAULT_CASH,
                            help=f"starting cash in the quote asset (default {DEFAULT_CASH})")
        parser.add_argument("--out", type=Path, help="the PNG to write (default backtest-<exchange>-<symbol>-"
                            "<interval>-<start>-<end>.png in the current folder)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            start, end = parse_range(opts["start"], opts["end"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        symbol, exchange, interval = opts["symbol"].upper(), opts["exchange"], opts["interval"]
        fee: Decimal = opts["fee"]
        out: Path = opts["out"] or Path(f"backtest-{exchange}-{symbol}-{interval}-{start:%Y%m%dT%H%M}-"
                                        f"{end:%Y%m%dT%H%M}.png")
        bar = tqdm(total=0, unit=" pages", disable=opts["no_progress"], file=self.stderr._out, dynamic_ncols=True,
                   desc=f"{exchange} {symbol} {interval} candles")
        try:
            run = backtest_run(exchange=exchange, symbol=symbol, interval=interval, start=start, end=end, fee=fee,
                               cash=opts["cash"], on_pages=lambda n: bar.reset(total=n),
                               on_page=lambda k: bar.update(1))
        except InvalidRequest as exc:
            raise CommandError(f"--{exc.field} {exc.message}") from None
        except ExchangeError as exc:
            raise CommandError(f"{exc} (candles fetched before this are stored; rerun to continue)") from None
        finally:
            bar.close()
        if not run.result.curve:
            raise CommandError(f"no closed {interval} candles of {exchange} {symbol} in {start:%Y-%m-%d %H:%M:%S} .. "
                               f"{end:%Y-%m-%d %H:%M:%S} UTC: nothing to replay")
        title = (f"{exchange} {symbol} {interval} {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC — "
                 f"{STRATEGY} v{VERSION}, fee {_pct(fee)} %")
        equity_png(run.result, out, title=title)
        self.stdout.write(summary(run, exchange=exchange, symbol=symbol, interval=interval, out=out))


def _pct(fraction: Decimal) -> str:
    return f"{(fraction * 100).normalize():f}"


def summary(run: BacktestRun, *, exchange: str, symbol: str, interval: str, out: Path) -> str:
    """The summary table a backtest prints."""
    r, c = run.result, run.candles
    win = "—" if r.win_rate_pct is None else f"{r.win_rate_pct:.1f}"
    first, last = r.curve[0].time, r.curve[-1].time
    return "\n".join([
        f"{exchange} {symbol} {interval} {c.start:%Y-%m-%d %H:%M:%S} .. {c.end:%Y-%m-%d %H:%M:%S} UTC, "
        f"{STRATEGY} v{VERSION}, fee {_pct(r.fee)} % per fill, cash {r.cash:,}",
        f"  candles           {r.candles:>10,}  ({first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}; "
        f"{c.warm_up:,} more before for warm-up)",
        f"  signals BUY       {r.buys:>10,}",
        f"  signals SELL      {r.sells:>10,}",
        f"  trades            {len(r.closed_trades):>10,}  ({r.open_trades} still open at the end, marked to the "
        f"last close)",
        f"  return %          {r.return_pct:>10.2f}  (equity {r.curve[-1].equity:,.2f})",
        f"  buy & hold %      {r.hold_return_pct:>10.2f}",
        f"  max drawdown %    {r.max_drawdown_pct:>10.2f}",
        f"  win rate %        {win:>10}",
        f"  equity curve      {out}",
    ])
