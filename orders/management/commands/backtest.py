"""``manage.py backtest``: replay past candles through the strategy, the risk check and paper fills; a summary and a
PNG."""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Callable
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
from orders.backtest import DEFAULT_CASH, BacktestResult, ExitReason, Trade
from orders.backtest_chart import equity_png
from orders.backtest_run import BacktestRun, backtest_run
from orders.risk import RiskParams
from signals.rules import STRATEGY, VERSION

EXITS = (
    (ExitReason.TAKE_PROFIT, "take-profit"),
    (ExitReason.STOP_LOSS, "stop-loss"),
    (ExitReason.SIGNAL, "signal"),
    (ExitReason.OPEN, "open"),
)


def _percent(*, zero: bool) -> Callable[[str], Decimal]:
    """A parser of a percentage (``0.1`` is 0.1 %) below 100, zero allowed or not, to a fraction."""
    low = "from 0" if zero else "above 0"

    def parse(text: str) -> Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ArgumentTypeError(f"{text!r} is not a number of percent (0.1 means 0.1 %)") from None
        if not value.is_finite() or not (value >= 0 if zero else value > 0) or value >= 100:
            raise ArgumentTypeError(f"{text} is not a percentage {low} to below 100")
        return value / 100

    return parse


percent = _percent(zero=True)
positive_percent = _percent(zero=False)


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
    help = (
        "Replay the candles of a time range through the signal strategy (the same code as the live stream), the "
        "risk check and the paper executor's fills (the same code as live paper trading): positions sized by the "
        "risk limits, closed by their stop-loss, take-profit or a SELL, slippage and a fee on each fill. Candles "
        "come from MongoDB first, the exchange for what is missing (stored). Prints a summary and writes an "
        "equity-curve PNG. Times: ISO-8601 (UTC if no zone), epoch ms, 'now' or '<n>m|h|d ago'."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--exchange", default="binance", choices=KNOWN_EXCHANGES)
        parser.add_argument("--symbol", required=True, help="exchange symbol, e.g. BTCUSDT")
        parser.add_argument("--start", required=True)
        parser.add_argument("--end", default="now")
        parser.add_argument("--interval", default="1m", choices=list(INTERVALS))
        parser.add_argument(
            "--fee", type=percent, help="fee per fill in percent of its notional (default PAPER_FEE, 0.1 %%)"
        )
        parser.add_argument(
            "--slippage",
            type=percent,
            help="slippage against each fill in percent of its price (default PAPER_SLIPPAGE, 0.05 %%)",
        )
        parser.add_argument(
            "--cash",
            type=amount,
            default=DEFAULT_CASH,
            help=f"starting cash in the quote asset (default {DEFAULT_CASH})",
        )
        parser.add_argument(
            "--risk-per-trade",
            type=positive_percent,
            help="equity lost at the stop-loss, in percent (default RISK_PER_TRADE, 2 %%)",
        )
        parser.add_argument(
            "--stop-loss",
            type=positive_percent,
            help="the stop-loss below the entry, in percent "
            "(default RISK_STOP_LOSS, 3 %%; given, it replaces an ATR stop)",
        )
        parser.add_argument(
            "--take-profit",
            type=positive_percent,
            help="the take-profit above the entry, in "
            "percent (default RISK_TAKE_PROFIT, 6 %%; given, it replaces a reward:risk target)",
        )
        parser.add_argument(
            "--out",
            type=Path,
            help="the PNG to write (default backtest-<exchange>-<symbol>-"
            "<interval>-<start>-<end>.png in the current folder)",
        )
        parser.add_argument("--trades", action="store_true", help="list every trade after the summary")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            start, end = parse_range(opts["start"], opts["end"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        symbol, exchange, interval = opts["symbol"].upper(), opts["exchange"], opts["interval"]
        risk: dict[str, Decimal | None] = {}
        if opts["risk_per_trade"] is not None:
            risk["risk_per_trade"] = opts["risk_per_trade"]
        if opts["stop_loss"] is not None:
            risk.update(stop_loss_pct=opts["stop_loss"], stop_atr_multiple=None)
        if opts["take_profit"] is not None:
            risk.update(take_profit_pct=opts["take_profit"], reward_risk=None)
        out: Path = opts["out"] or Path(
            f"backtest-{exchange}-{symbol}-{interval}-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}.png"
        )
        bar = tqdm(
            total=0,
            unit=" pages",
            disable=opts["no_progress"],
            file=self.stderr._out,
            dynamic_ncols=True,
            desc=f"{exchange} {symbol} {interval} candles",
        )
        try:
            run = backtest_run(
                exchange=exchange,
                symbol=symbol,
                interval=interval,
                start=start,
                end=end,
                cash=opts["cash"],
                fee=opts["fee"],
                slippage=opts["slippage"],
                risk=risk,
                on_pages=lambda n: bar.reset(total=n),
                on_page=lambda k: bar.update(1),
            )
        except InvalidRequest as exc:
            raise CommandError(f"--{exc.field} {exc.message}") from None
        except ExchangeError as exc:
            raise CommandError(f"{exc} (candles fetched before this are stored; rerun to continue)") from None
        except ValueError as exc:  # a bad RISK_PARAMS / PAPER_* setting
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        r = run.result
        if not r.curve:
            raise CommandError(
                f"no closed {interval} candles of {exchange} {symbol} in {start:%Y-%m-%d %H:%M:%S} .. "
                f"{end:%Y-%m-%d %H:%M:%S} UTC: nothing to replay"
            )
        title = (
            f"{exchange} {symbol} {interval} {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC — "
            f"{STRATEGY} v{VERSION}\n{limits(r.params)}; fee {_pct(r.terms.fee)} %, "
            f"slippage {_pct(r.terms.slippage)} %"
        )
        equity_png(r, out, title=title)
        self.stdout.write(summary(run, exchange=exchange, symbol=symbol, interval=interval, out=out))
        if opts["trades"]:
            self.stdout.write(trade_list(r))


def _pct(fraction: Decimal) -> str:
    return f"{(fraction * 100).normalize():f}"


def limits(p: RiskParams) -> str:
    """The risk limits in a few words."""
    stop = (
        f"stop {p.stop_atr_multiple.normalize():f} × ATR"
        if p.stop_atr_multiple is not None
        else f"stop-loss {_pct(p.stop_loss_pct)} %"
    )
    target = (
        f"take-profit {p.reward_risk.normalize():f} × risk"
        if p.reward_risk is not None
        else f"take-profit {_pct(p.take_profit_pct)} %"
    )
    return (
        f"risk {_pct(p.risk_per_trade)} % per trade, ≤ {_pct(p.max_symbol_fraction)} % of equity, {stop}, "
        f"{target}, daily halt {_pct(p.daily_drawdown_halt)} %"
    )


def summary(run: BacktestRun, *, exchange: str, symbol: str, interval: str, out: Path) -> str:
    """The summary table a backtest prints."""
    r, c = run.result, run.candles
    win = "—" if r.win_rate_pct is None else f"{r.win_rate_pct:.1f}"
    first, last = r.curve[0].time, r.curve[-1].time
    approved, rejected = r.approved, r.rejected
    why = ", ".join(f"{reason} {n}" for reason, n in rejected.most_common()) or "none"
    exits = r.exits
    return "\n".join(
        [
            f"{exchange} {symbol} {interval} {c.start:%Y-%m-%d %H:%M:%S} .. {c.end:%Y-%m-%d %H:%M:%S} UTC, "
            f"{STRATEGY} v{VERSION}, cash {r.cash:,}",
            f"  through the risk check ({limits(r.params)})",
            f"  and the paper executor (fee {_pct(r.terms.fee)} % and slippage {_pct(r.terms.slippage)} % per fill; "
            f"tick {r.filters.tick_size.normalize():f}, step {r.filters.step_size.normalize():f})",
            f"  candles           {r.candles:>10,}  ({first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}; "
            f"{c.warm_up:,} more before for warm-up)",
            f"  signals BUY       {r.buys:>10,}",
            f"  signals SELL      {r.sells:>10,}",
            f"  risk approved     {approved.total():>10,}  (BUY {approved['BUY']} opened, SELL {approved['SELL']} "
            f"closed)",
            f"  risk rejected     {rejected.total():>10,}  ({why})",
            f"  trades            {len(r.closed_trades):>10,}  ({r.open_trades} still open at the end, marked to the "
            f"last close)",
            "  exits             " + ", ".join(f"{label} {exits[reason]}" for reason, label in EXITS),
            f"  fees paid         {r.fees:>10,.2f}",
            f"  return %          {r.return_pct:>10.2f}  (equity {r.curve[-1].equity:,.2f})",
            f"  buy & hold %      {r.hold_return_pct:>10.2f}",
            f"  max drawdown %    {r.max_drawdown_pct:>10.2f}",
            f"  win rate %        {win:>10}",
            f"  equity curve      {out}",
        ]
    )


def trade_list(r: BacktestResult) -> str:
    """One line per trade: entry, exit (or the mark of an open one), quantity, fees and PnL."""

    def line(t: Trade) -> str:
        exit_ = (
            f"{t.exit_time:%m-%d %H:%M} {t.exit_price:>12,.2f}" if t.exit_time and t.exit_price else f"{'':11} {'':>12}"
        )
        return (
            f"  {t.entry_time:%m-%d %H:%M} {t.entry_price:>12,.2f}  {exit_}  {t.exit_reason:<11}  "
            f"{t.qty.normalize():>12f}  {t.fees:>8,.2f}  {t.pnl:>10,.2f}"
        )

    head = (
        f"  {'entry':11} {'price':>12}  {'exit':11} {'price':>12}  {'reason':<11}  {'qty':>12}  {'fees':>8}  "
        f"{'PnL':>10}"
    )
    return "\n".join([head, *(line(t) for t in r.trades)])
