"""The backtest: trades through the risk check and the paper fill arithmetic, by hand-worked figures (pure), and
``manage.py backtest`` against the simulator — a summary, a PNG, and the same decisions ``evaluate_stored`` makes on
the same stored candles."""

from __future__ import annotations

import io
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.exchanges.base import CandleBar
from orders.backtest import BacktestResult, ExitReason, max_drawdown_pct, simulate
from orders.backtest_run import backtest_run
from orders.paper import PaperTerms
from orders.risk import Filters, RiskParams
from orders.selectors import instrument_filters
from signals.rules import Action, Decision
from signals.services import evaluate_stored
from tests.conftest import sim_config
from tests.signals.walks import bar, random_walk

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TERMS = PaperTerms(fee=Decimal("0.001"), slippage=Decimal("0.0005"))  # 0.1 % fee, 5 bps slippage
FILTERS = Filters(tick_size=Decimal("0.01"), step_size=Decimal("0.001"))
LIMITS = RiskParams()  # 2 % risk per trade, ≤ 10 % of equity, stop-loss 3 %, take-profit 6 %, daily halt 5 %
# A BUY at the close 103 with 10,000: stop 99.91 (103 × 0.97), take-profit 109.18 (103 × 1.06); the 2 % risk
# (200 / 3.09 = 64.7 units) is capped at 10 % of equity (1,000 / 103 = 9.7087…), rounded to the 0.001 step: 9.708.
# It fills at 103 × 1.0005 = 103.0515 and pays 9.708 × 103.0515 × 0.001 = 1.00042396.
QTY, ENTRY, ENTRY_FEE = Decimal("9.708"), Decimal("103.0515"), Decimal("1.00042396")


def candle(i: int, open_: str, high: str, low: str, close: str) -> CandleBar:
    return bar(i, Decimal(open_), Decimal(high), Decimal(low), Decimal(close))


def flat(i: int, price: str) -> CandleBar:
    return candle(i, price, price, price, price)


def acting(bars: list, actions: dict[int, Action], atr: float | None = None) -> list[Decision]:
    by_index = {b.open_time: b for b in bars}
    times = sorted(by_index)
    return [
        Decision(
            "ta-vote",
            1,
            "binance",
            "BTCUSDT",
            "1m",
            times[i],
            a,
            Decimal("0.3"),
            Decimal("0.3"),
            (),
            (),
            {"atr14": atr},
        )
        for i, a in actions.items()
    ]


def trade(bars: list, actions: dict[int, Action], limits: RiskParams = LIMITS) -> BacktestResult:
    return simulate(bars, acting(bars, actions), filters=FILTERS, params=limits, terms=TERMS)


def test_take_profit_reached_by_a_candles_high() -> None:
    """Bought at 103 (see ENTRY), the next candle's high 110 passes the take-profit 109.18: sold at the level with
    slippage, 109.18 × 0.9995 = 109.12541, fee 9.708 × 109.12541 × 0.001 = 1.05938948; PnL 9.708 × (109.12541 -
    103.0515) - 1.00042396 - 1.05938948 = 58.96551828 - 2.05981344 = 56.90570484."""
    bars = [flat(0, "103"), candle(1, "104", "110", "103.5", "108")]
    result = trade(bars, {0: Action.BUY})
    (t,) = result.trades
    assert (t.entry_time, t.entry_price, t.qty, t.stop_price, t.take_profit_price) == (
        bars[0].open_time,
        ENTRY,
        QTY,
        Decimal("99.91"),
        Decimal("109.18"),
    )
    assert (t.exit_reason, t.exit_time, t.exit_price) == (
        ExitReason.TAKE_PROFIT,
        bars[1].open_time,
        Decimal("109.12541"),
    )
    assert t.fees == Decimal("2.05981344")
    assert t.pnl == Decimal("56.90570484")
    assert [p.equity for p in result.curve] == [
        Decimal("10000") - QTY * ENTRY - ENTRY_FEE + QTY * 103,
        Decimal("10056.90570484"),
    ]
    assert result.return_pct == Decimal("0.569057048400")
    assert result.win_rate_pct == 100
    assert result.approved == {"BUY": 1}
    assert result.rejected == {}
    assert result.exits == {ExitReason.TAKE_PROFIT: 1}


@pytest.mark.parametrize(
    ("path", "reason", "exit_price", "pnl"),
    [
        # (open, high, low, close) of the candle after the BUY at 103: stop 99.91, take-profit 109.18
        (("104", "110", "103.5", "108"), ExitReason.TAKE_PROFIT, "109.12541", "56.90570484"),  # high reaches it
        (("103", "110", "99", "105"), ExitReason.STOP_LOSS, "99.860045", "-32.95251042"),  # both: the stop first
        (("95", "96", "94", "95"), ExitReason.STOP_LOSS, "94.9525", "-80.54731483"),  # gapped below: at the open
        (("112", "113", "111", "112"), ExitReason.TAKE_PROFIT, "111.944", "84.24121369"),  # gapped above: the open
        (("103", "105", "100", "104"), ExitReason.OPEN, None, "8.20761404"),  # neither: marked, 9.708 × 0.9485 - fee
    ],
)
def test_the_candle_path_decides_the_exit(
    path: tuple[str, str, str, str], reason: ExitReason, exit_price: str | None, pnl: str
) -> None:
    """A candle's path is open, low, high: a level is filled at itself, or at the open when the candle opened past
    it, then slippage (×0.9995) and the fee; a candle reaching both levels takes the stop-loss."""
    bars = [flat(0, "103"), candle(1, *path)]
    (t,) = trade(bars, {0: Action.BUY}).trades
    assert t.exit_reason is reason
    assert t.exit_price == (Decimal(exit_price) if exit_price else None)
    assert t.pnl == Decimal(pnl)


def test_a_sell_signal_closes_at_the_close() -> None:
    """SELL at the close 105: 105 × 0.9995 = 104.9475, fee 1.01883033, PnL 9.708 × 1.896 - 1.00042396 -
    1.01883033 = 16.38711371; a SELL while flat is rejected no_position."""
    bars = [
        flat(0, "103"),
        candle(1, "103", "104", "102", "103.5"),
        candle(2, "104", "105.5", "103.8", "105"),
        flat(3, "106"),
    ]
    result = trade(bars, {0: Action.BUY, 2: Action.SELL, 3: Action.SELL})
    (t,) = result.trades
    assert (t.exit_reason, t.exit_time, t.exit_price, t.pnl) == (
        ExitReason.SIGNAL,
        bars[2].open_time,
        Decimal("104.9475"),
        Decimal("16.38711371"),
    )
    assert result.approved == {"BUY": 1, "SELL": 1}
    assert result.rejected == {"no_position": 1}
    assert result.curve[-1].equity == Decimal("10016.38711371")


def test_the_stop_goes_before_the_candles_sell() -> None:
    """A candle that reaches the stop closes the position before its SELL is decided: the SELL finds nothing."""
    bars = [flat(0, "103"), candle(1, "100", "101", "99", "100.5")]
    result = trade(bars, {0: Action.BUY, 1: Action.SELL})
    assert [t.exit_reason for t in result.trades] == [ExitReason.STOP_LOSS]
    assert result.rejected == {"no_position": 1}


def test_a_second_buy_while_long_is_rejected() -> None:
    """One position per symbol: a BUY while long is rejected position_open; the position stays open, marked."""
    bars = [flat(0, "103"), flat(1, "104"), flat(2, "105")]
    result = trade(bars, {0: Action.BUY, 1: Action.BUY})
    assert result.rejected == {"position_open": 1}
    (t,) = result.trades
    assert (t.exit_reason, t.exit_time, t.exit_price) == (ExitReason.OPEN, None, None)
    assert t.pnl == QTY * (105 - ENTRY) - ENTRY_FEE
    assert result.open_trades == 1
    assert result.win_rate_pct is None
    assert result.checks[1].reasons == ("a position is already open on BTCUSDT (one per symbol)",)


def test_daily_drawdown_halts_entries_until_the_next_utc_day() -> None:
    """With a 0.5 % daily halt: stopped out at 99.91 (-32.95, 0.33 %) the next BUY still trades; stopped out again
    at 97 (-32.85, 0.66 % in all) the BUY after it is rejected daily_drawdown; the 23:59 candle is decided when it
    closes, at 00:00, so its BUY belongs to the new day and trades."""
    bars = [
        flat(0, "103"),
        candle(1, "103", "110", "99", "100"),
        flat(2, "100"),
        candle(3, "100", "100", "96", "96"),
        flat(4, "96"),
        flat(1438, "96"),
        flat(1439, "96"),
    ]
    result = trade(
        bars,
        {0: Action.BUY, 2: Action.BUY, 4: Action.BUY, 5: Action.BUY, 6: Action.BUY},
        RiskParams(daily_drawdown_halt=Decimal("0.005")),
    )
    assert [(c.approved, c.rejection) for c in result.checks] == [
        (True, None),
        (True, None),
        (False, "daily_drawdown"),
        (False, "daily_drawdown"),
        (True, None),
    ]
    first, second, _ = result.trades
    assert first.pnl == Decimal("-32.95251042")
    # 9,967.05 of equity at 100: 9.967 bought at 100.05 (fee 0.99719835), stopped at 97 × 0.9995 = 96.9515
    assert (second.qty, second.entry_price, second.stop_price, second.exit_price) == (
        Decimal("9.967"),
        Decimal("100.05"),
        Decimal("97.00"),
        Decimal("96.9515"),
    )
    assert second.pnl == Decimal("9.967") * (Decimal("96.9515") - Decimal("100.05")) - second.fees
    assert "daily drawdown limit" in result.checks[2].reasons[0]
    assert result.rejected == {"daily_drawdown": 2}


def test_an_atr_stop_comes_from_the_decisions_indicators() -> None:
    """With stop_atr_multiple 2, the stop is 2 × the decision's ATR 14 below the close: 103 - 2 × 1.5 = 100."""
    bars = [flat(0, "103")]
    result = simulate(
        bars,
        acting(bars, {0: Action.BUY}, atr=1.5),
        filters=FILTERS,
        terms=TERMS,
        params=RiskParams(stop_atr_multiple=Decimal(2)),
    )
    assert result.trades[0].stop_price == Decimal("100.00")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_books_balance_on_a_random_walk(seed: int) -> None:
    """Over 3,000 candles of random decisions: every signal is approved or rejected, each trade exits after its
    entry candle, and the final equity less the cash is the sum of the trades' PnL (the open one's unrealised)."""
    bars = random_walk(3000, seed, vol=0.004)
    rng = random.Random(seed)
    actions = {i: rng.choice([Action.BUY, Action.SELL]) for i in range(len(bars)) if rng.random() < 0.05}
    result = simulate(bars, acting(bars, actions), terms=TERMS)
    assert result.approved.total() + result.rejected.total() == result.buys + result.sells == len(actions)
    assert result.exits[ExitReason.STOP_LOSS] > 0
    assert result.exits[ExitReason.TAKE_PROFIT] > 0
    assert all(t.exit_time is None or t.exit_time > t.entry_time for t in result.trades)
    assert result.curve[-1].equity - result.cash == sum(t.pnl for t in result.trades)
    assert result.fees == sum(t.fees for t in result.trades) > 0


def test_max_drawdown_is_from_the_running_peak() -> None:
    assert max_drawdown_pct([Decimal(x) for x in (100, 120, 90, 130, 117)]) == Decimal(25)
    assert max_drawdown_pct([Decimal(x) for x in (100, 101, 102)]) == 0


@pytest.fixture
def slow_sim(settings: Any) -> Iterator[Simulator]:
    """A simulator at 10 trades/s with a day of history, as the configured Binance."""
    with running_in_thread(sim_config(rate=10.0)) as sim:
        settings.BINANCE_REST_URL = sim.url
        yield sim


def backtest(*args: str) -> str:
    out = io.StringIO()
    call_command("backtest", *args, "--no-progress", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def figure(text: str, label: str) -> str:
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(label))
    return line.strip()[len(label) :].split()[0]


@pytest.mark.django_db
@pytest.mark.usefixtures("slow_sim")
def test_backtest_of_the_simulator_history(tmp_path: Path) -> None:
    """Three hours of the simulator's synthetic BTCUSDT (its warm-up fetched too): the command prints the summary
    of the trades through the risk check and the paper executor and writes a PNG; its decisions are those
    ``evaluate_stored`` makes on the candles it stored, traded with the stored instrument's filters."""
    end = iv.floor(datetime.now(UTC), "1m") - timedelta(minutes=3)
    start = end - timedelta(hours=3)
    out = tmp_path / "charts" / "equity.png"
    text = backtest(
        "--exchange",
        "binance",
        "--symbol",
        "btcusdt",
        "--start",
        start.isoformat(),
        "--end",
        end.isoformat(),
        "--out",
        str(out),
        "--take-profit",
        "0.5",
        "--stop-loss",
        "0.25",
        "--trades",
    )
    print("\n" + text)
    assert figure(text, "candles") == "180"
    for label in (
        "signals BUY",
        "signals SELL",
        "risk approved",
        "risk rejected",
        "trades",
        "fees paid",
        "return %",
        "buy & hold %",
        "max drawdown %",
        "win rate %",
    ):
        assert re.fullmatch(r"-?[0-9,.]+|—", figure(text, label)), label
    assert "stop-loss 0.25 %, take-profit 0.5 %" in text
    assert "fee 0.1 % and slippage 0.05 % per fill" in text
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000

    run = backtest_run(
        exchange="binance",
        symbol="BTCUSDT",
        interval="1m",
        start=start,
        end=end,
        risk={"take_profit_pct": Decimal("0.005"), "stop_loss_pct": Decimal("0.0025")},
    )
    assert run.candles.exchange_requests == 0  # everything was stored by the command
    assert run.candles.warm_up == 999
    evaluated = evaluate_stored(exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end)
    assert evaluated.decisions == run.decisions
    assert len(run.decisions) == 180
    assert run.result.filters == instrument_filters(exchange="binance", symbol="BTCUSDT")
    r = run.result
    assert figure(text, "signals BUY") == str(sum(d.action is Action.BUY for d in evaluated.decisions))
    assert figure(text, "signals SELL") == str(sum(d.action is Action.SELL for d in evaluated.decisions))
    assert int(figure(text, "risk approved")) + int(figure(text, "risk rejected")) == r.buys + r.sells
    assert figure(text, "trades") == str(len(r.closed_trades))
    exits = dict(re.findall(r"([a-z-]+) (\d+)", text.split("exits", 1)[1].splitlines()[0]))
    assert (
        sum(map(int, exits.values()))
        == len(r.trades)
        == int(figure(text, "risk approved").split()[0]) - r.approved["SELL"]
    )
    assert figure(text, "return %") == f"{r.return_pct:.2f}"
    listed = re.findall(r"^  \d\d-\d\d \d\d:\d\d .*$", text.split("equity curve", 1)[1], re.M)
    assert len(listed) == len(r.trades)  # --trades: one line each


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--symbol", "BTCUSDT", "--start", "yesterday"), "--start"),
        (("--symbol", "BTCUSDT", "--start", "2026-01-02", "--end", "2026-01-01"), "--start must be before --end"),
        (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--end", "not a time"), "--end"),
        (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--interval", "2m"), "--interval"),
        (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--fee", "abc"), "--fee"),
        (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--fee", "150"), "--fee"),
        (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--cash", "-5"), "--cash"),
        (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--slippage", "-1"), "--slippage"),
        (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--risk-per-trade", "0"), "--risk-per-trade"),
        (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--stop-loss", "100"), "--stop-loss"),
        (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--take-profit", "six"), "--take-profit"),
        (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--exchange", "nyse"), "--exchange"),
    ],
)
def test_bad_arguments_are_named(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        backtest(*args)


@pytest.mark.django_db
@pytest.mark.usefixtures("slow_sim")
def test_an_unknown_symbol_is_named(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="--symbol"):
        backtest("--symbol", "DOGEUSDT", "--start", "2h ago", "--out", str(tmp_path / "x.png"))
