"""The backtest: the paper position's arithmetic (pure), and ``manage.py backtest`` against the simulator — a
summary, a PNG, and the same decisions ``evaluate_stored`` makes on the same stored candles."""

from __future__ import annotations

import io
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
from signals.backtest import max_drawdown_pct, simulate
from signals.rules import Action, Decision
from signals.services import backtest_run, evaluate_stored
from tests.conftest import sim_config
from tests.signals.walks import bar

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def closes(*prices: str) -> list:
    return [bar(i, Decimal(p), Decimal(p), Decimal(p), Decimal(p)) for i, p in enumerate(prices)]


def acting(bars: list, actions: dict[int, Action]) -> list[Decision]:
    return [Decision("ta-vote", 1, "binance", "BTCUSDT", "1m", bars[i].open_time, a, Decimal("0.3"), Decimal("0.3"),
                     (), (), {}) for i, a in actions.items()]


def test_round_trip_pays_the_fee_on_both_fills() -> None:
    """BUY at 100, SELL at 110 with 0.1 %: 10,000 → 9,990 / 100 = 99.9 units → 99.9 × 110 × 0.999 = 10,978.011."""
    bars = closes("100", "105", "110", "120")
    result = simulate(bars, acting(bars, {0: Action.BUY, 2: Action.SELL}), fee=Decimal("0.001"))
    assert [p.equity for p in result.curve] == [Decimal("9990.0"), Decimal("10489.5"), Decimal("10978.011"),
                                                Decimal("10978.011")]
    assert result.return_pct == Decimal("9.78011")
    assert result.hold_return_pct == Decimal("19.88")  # 99.9 units held to 120
    assert [t.pnl for t in result.trades] == [Decimal("978.011")]
    assert result.win_rate_pct == 100
    assert (result.buys, result.sells, result.open_trades) == (1, 1, 0)


def test_long_only_ignores_a_sell_while_flat_and_a_buy_while_long() -> None:
    """SELL first (flat: ignored), BUY, BUY again (already long: ignored), nothing sold: one open trade, marked."""
    bars = closes("100", "90", "80", "120")
    result = simulate(bars, acting(bars, {0: Action.SELL, 1: Action.BUY, 2: Action.BUY}), fee=Decimal(0))
    assert len(result.trades) == 1
    assert result.open_trades == 1
    assert result.trades[0].entry_price == Decimal("90")
    assert result.win_rate_pct is None
    assert result.curve[-1].equity == Decimal("10000") / 90 * 120
    assert len(result.markers) == 3  # every signal is drawn, acted on or not


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
    return line.strip()[len(label):].split()[0]


@pytest.mark.django_db
@pytest.mark.usefixtures("slow_sim")
def test_backtest_of_the_simulator_history(tmp_path: Path) -> None:
    """Three hours of the simulator's synthetic BTCUSDT (its warm-up fetched too): the command prints the summary
    and writes a PNG; its decisions are those ``evaluate_stored`` makes on the candles it stored."""
    end = iv.floor(datetime.now(UTC), "1m") - timedelta(minutes=3)
    start = end - timedelta(hours=3)
    out = tmp_path / "charts" / "equity.png"
    text = backtest("--exchange", "binance", "--symbol", "btcusdt", "--start", start.isoformat(), "--end",
                    end.isoformat(), "--out", str(out))
    print("\n" + text)
    assert figure(text, "candles") == "180"
    for label in ("signals BUY", "signals SELL", "trades", "return %", "buy & hold %", "max drawdown %", "win rate %"):
        assert re.fullmatch(r"-?[0-9,.]+|—", figure(text, label)), label
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 10_000

    run = backtest_run(exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end)
    assert run.candles.exchange_requests == 0  # everything was stored by the command
    assert run.candles.warm_up == 999
    evaluated = evaluate_stored(exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end)
    assert evaluated.decisions == run.decisions
    assert len(run.decisions) == 180
    assert figure(text, "signals BUY") == str(sum(d.action is Action.BUY for d in evaluated.decisions))
    assert figure(text, "signals SELL") == str(sum(d.action is Action.SELL for d in evaluated.decisions))


@pytest.mark.parametrize(("args", "message"), [
    (("--symbol", "BTCUSDT", "--start", "yesterday"), "--start"),
    (("--symbol", "BTCUSDT", "--start", "2026-01-02", "--end", "2026-01-01"), "--start must be before --end"),
    (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--end", "not a time"), "--end"),
    (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--interval", "2m"), "--interval"),
    (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--fee", "abc"), "--fee"),
    (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--fee", "150"), "--fee"),
    (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--cash", "-5"), "--cash"),
    (("--symbol", "BTCUSDT", "--start", "2026-01-01", "--exchange", "nyse"), "--exchange"),
])
def test_bad_arguments_are_named(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        backtest(*args)


@pytest.mark.django_db
@pytest.mark.usefixtures("slow_sim")
def test_an_unknown_symbol_is_named(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="--symbol"):
        backtest("--symbol", "DOGEUSDT", "--start", "2h ago", "--out", str(tmp_path / "x.png"))
