"""The risk check, table-driven: every approval path and every rejection reason, with figures worked by hand."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from orders.risk import Book, Filters, Proposal, Rejection, RiskParams, assess

BTC = Filters(tick_size=D("0.01"), step_size=D("0.00001"), min_qty=D("0.00001"), max_qty=D(9000), min_notional=D(5))
FLAT = Book(equity=D(10000), available=D(10000), day_start_equity=D(10000))


def book(**kw: object) -> Book:
    return Book(**{**{"equity": D(10000), "available": D(10000), "day_start_equity": D(10000)}, **kw})  # type: ignore


# (name, proposal, book, filters, params, qty, stop, take-profit, a reason that must be there)
APPROVALS = [
    # 2 % of 10,000 = 200 over a 3 % stop (1,200) = 0.16666 BTC; 10 % of equity caps it at 1,000 / 40,000.
    (
        "capped at 10 % per symbol",
        Proposal("BUY", "BTCUSDT", D(40000)),
        FLAT,
        BTC,
        RiskParams(),
        D("0.025"),
        D("38800.00"),
        D("42400.00"),
        "capped at 10 % of equity per symbol",
    ),
    # A 3 % risk with a 40 % stop: 300 / 16,000 = 0.01875 < 0.025, the risk is what binds.
    (
        "sized by the risk",
        Proposal("BUY", "BTCUSDT", D(40000)),
        FLAT,
        BTC,
        RiskParams(risk_per_trade=D("0.03"), stop_loss_pct=D("0.4"), take_profit_pct=D("0.5")),
        D("0.01875"),
        D("24000.00"),
        D("60000.00"),
        "risk 3 % of equity 10,000 = 300 over the stop distance 16,000",
    ),
    # Only 500 available: 500 / (40,000 × 1.001) = 0.012487... rounded down to 0.01248.
    (
        "capped by the balance",
        Proposal("BUY", "BTCUSDT", D(40000)),
        book(available=D(500)),
        BTC,
        RiskParams(),
        D("0.01248"),
        D("38800.00"),
        D("42400.00"),
        "capped by the available balance 500",
    ),
    # k × ATR: 2 × 250 = 500 below 40,000; reward:risk 3 → 41,500. Risk 200 / 500 = 0.4, capped at 0.025.
    (
        "ATR stop and reward:risk take-profit",
        Proposal("BUY", "BTCUSDT", D(40000), atr=D(250)),
        FLAT,
        BTC,
        RiskParams(stop_atr_multiple=D(2), reward_risk=D(3)),
        D("0.025"),
        D("39500.00"),
        D("41500.00"),
        "2 × ATR 250 below the price",
    ),
    # Without an ATR the k × ATR rule falls back to the percent stop.
    (
        "ATR rule without an ATR",
        Proposal("BUY", "BTCUSDT", D(40000)),
        FLAT,
        BTC,
        RiskParams(stop_atr_multiple=D(2)),
        D("0.025"),
        D("38800.00"),
        D("42400.00"),
        "3 % below the price",
    ),
    # Tick rounding: 3 % below 123.45 = 119.7465 → 119.74 (down); 6 % above = 130.857 → 130.86 (up).
    (
        "prices rounded to the tick",
        Proposal("BUY", "BTCUSDT", D("123.45")),
        FLAT,
        BTC,
        RiskParams(),
        D("8.10044"),
        D("119.74"),
        D("130.86"),
        "rounded down to the step size 0.00001: 8.10044",
    ),
    # The exchange's maximum quantity caps a tiny-priced coin.
    (
        "capped at the maximum quantity",
        Proposal("BUY", "DOGEUSDT", D("0.0001")),
        FLAT,
        Filters(D("0.0000001"), D(1), D(1), D(5000), D(0)),
        RiskParams(),
        D(5000),
        D("0.0000970"),
        D("0.0001060"),
        "capped at the exchange's maximum quantity",
    ),
    # A drawdown just under the halt still trades: 4.99 % below the day's start.
    (
        "drawdown just under the halt",
        Proposal("BUY", "BTCUSDT", D(40000)),
        book(equity=D(9501), available=D(9501), day_start_equity=D(10000)),
        BTC,
        RiskParams(),
        D("0.02375"),
        D("38800.00"),
        D("42400.00"),
        "approved",
    ),
    # Two positions open on other symbols: the third is allowed.
    (
        "third position",
        Proposal("BUY", "BTCUSDT", D(40000)),
        book(open_symbols=frozenset({"ETHUSDT", "SOLUSDT"})),
        BTC,
        RiskParams(),
        D("0.025"),
        D("38800.00"),
        D("42400.00"),
        "approved",
    ),
]


@pytest.mark.parametrize(
    ("proposal", "bk", "filters", "params", "qty", "stop", "tp", "reason"),
    [a[1:] for a in APPROVALS],
    ids=[a[0] for a in APPROVALS],
)
def test_approval_paths(
    proposal: Proposal, bk: Book, filters: Filters, params: RiskParams, qty: D, stop: D, tp: D, reason: str
) -> None:
    v = assess(proposal, bk, filters, params)
    assert v.approved, v.reasons
    assert v.rejection is None
    assert (v.qty, v.stop_price, v.take_profit_price) == (qty, stop, tp), v.reasons
    assert any(reason in r for r in v.reasons), v.reasons
    assert not v.closes
    # The loss at the stop never exceeds the risk, and the notional never the cap.
    assert v.qty * (proposal.price - v.stop_price) <= bk.equity * params.risk_per_trade
    assert v.qty * proposal.price <= bk.equity * params.max_symbol_fraction
    assert v.qty % filters.step_size == 0
    assert v.stop_price % filters.tick_size == 0


def test_sell_closes_the_open_position_rounded_to_the_step() -> None:
    v = assess(
        Proposal("SELL", "BTCUSDT", D(41000)), book(open_symbols=frozenset({"BTCUSDT"}), held=D("0.0249751")), BTC
    )
    assert v.approved
    assert v.closes
    assert v.qty == D("0.02497")
    assert v.reasons == ("SELL BTCUSDT: close the open position, 0.02497 at about 41,000",)


# (name, proposal, book, filters, params, rejection, words the reason must contain)
REJECTIONS = [
    (
        "HOLD",
        Proposal("HOLD", "BTCUSDT", D(40000)),
        FLAT,
        BTC,
        RiskParams(),
        Rejection.NOT_ACTIONABLE,
        "only BUY and SELL trade",
    ),
    (
        "no price",
        Proposal("BUY", "BTCUSDT", None),
        FLAT,
        BTC,
        RiskParams(),
        Rejection.BAD_PRICE,
        "no usable live price",
    ),
    (
        "zero price",
        Proposal("BUY", "BTCUSDT", D(0)),
        FLAT,
        BTC,
        RiskParams(),
        Rejection.BAD_PRICE,
        "no usable live price",
    ),
    (
        "halted at 5 %",
        Proposal("BUY", "BTCUSDT", D(40000)),
        book(equity=D(9500), day_start_equity=D(10000)),
        BTC,
        RiskParams(),
        Rejection.HALTED,
        "5 % below today's start 10,000",
    ),
    (
        "one per symbol",
        Proposal("BUY", "BTCUSDT", D(40000)),
        book(open_symbols=frozenset({"BTCUSDT"})),
        BTC,
        RiskParams(),
        Rejection.POSITION_OPEN,
        "already open on BTCUSDT",
    ),
    (
        "three open",
        Proposal("BUY", "BTCUSDT", D(40000)),
        book(open_symbols=frozenset({"ETHUSDT", "SOLUSDT", "BNBUSDT"})),
        BTC,
        RiskParams(),
        Rejection.MAX_POSITIONS,
        "3 positions are open (BNBUSDT, ETHUSDT, SOLUSDT), the limit is 3",
    ),
    (
        "sell with nothing open",
        Proposal("SELL", "BTCUSDT", D(40000)),
        FLAT,
        BTC,
        RiskParams(),
        Rejection.NO_POSITION,
        "no open position to close",
    ),
    (
        "sell of dust",
        Proposal("SELL", "BTCUSDT", D(40000)),
        book(open_symbols=frozenset({"BTCUSDT"}), held=D("0.000009")),
        BTC,
        RiskParams(),
        Rejection.MIN_QTY,
        "rounds down to 0",
    ),
    (
        "no equity",
        Proposal("BUY", "BTCUSDT", D(40000)),
        book(equity=D(0), day_start_equity=D(0)),
        BTC,
        RiskParams(),
        Rejection.NO_EQUITY,
        "nothing can be risked",
    ),
    (
        "no balance",
        Proposal("BUY", "BTCUSDT", D(40000)),
        book(available=D(0)),
        BTC,
        RiskParams(),
        Rejection.NO_BALANCE,
        "available balance is 0",
    ),
    (
        "ATR stop below zero",
        Proposal("BUY", "BTCUSDT", D(100), atr=D(60)),
        FLAT,
        BTC,
        RiskParams(stop_atr_multiple=D(2)),
        Rejection.BAD_STOP,
        "is not between 0 and the price",
    ),
    (
        "below the minimum quantity",
        Proposal("BUY", "BTCUSDT", D(40000)),
        book(available=D("0.3")),
        BTC,
        RiskParams(),
        Rejection.MIN_QTY,
        "below the minimum quantity 0.00001",
    ),
    (
        "below the minimum notional",
        Proposal("BUY", "BTCUSDT", D(40000)),
        book(available=D(4)),
        BTC,
        RiskParams(),  # 4 / 40,040 → 0.00009 → 3.6
        Rejection.MIN_NOTIONAL,
        "notional 3.6 is below the minimum 5",
    ),
]


@pytest.mark.parametrize(
    ("proposal", "bk", "filters", "params", "rejection", "words"),
    [r[1:] for r in REJECTIONS],
    ids=[r[0] for r in REJECTIONS],
)
def test_rejection_reasons(
    proposal: Proposal, bk: Book, filters: Filters, params: RiskParams, rejection: Rejection, words: str
) -> None:
    v = assess(proposal, bk, filters, params)
    assert not v.approved
    assert v.rejection is rejection, v
    assert v.qty is None
    assert any(words in r for r in v.reasons), v.reasons


def test_every_rejection_reason_is_covered_and_stored_by_the_model() -> None:
    from orders.models import RiskDecision

    assert {r[5] for r in REJECTIONS} == set(Rejection) - {Rejection.UNAVAILABLE}  # the pipeline's: test_paper
    assert {r.value for r in Rejection} == {c for c, _ in RiskDecision.Rejection.choices} - {""}


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"risk_per_trade": D(2)}, "risk_per_trade must be a fraction between 0 and 1"),
        ({"stop_loss_pct": D(0)}, "stop_loss_pct must be a fraction"),
        ({"max_open_positions": 0}, "max_open_positions must be at least 1"),
        ({"reward_risk": D(-1)}, "reward_risk must be positive"),
        ({"fee": D(1)}, "fee must be a fraction"),
    ],
)
def test_bad_parameters_are_named(kw: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        RiskParams(**kw)  # type: ignore[arg-type]
