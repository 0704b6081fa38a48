"""The paper executor over a real mongod: risk-sized entries filled with slippage and fee, stop-loss and
take-profit watched on every price, whichever comes first closing the position, PnL worked out by hand."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from orders.executors.base import PricePoint
from orders.executors.paper import PaperExecutor
from orders.models import Fill, Order, Position, RiskDecision
from orders.services import account_book, act_on_signal, order_cancel, position_close
from tests.orders.paper_helpers import T0, signal, store_instrument

SLIP, FEE = D("0.0005"), D("0.001")


@pytest.fixture
def paper(db: None) -> PaperExecutor:
    store_instrument()
    store_instrument(symbol="ETHUSDT")
    return PaperExecutor("binance", cash=D(10000), fee=FEE, slippage=SLIP)


def prices(*values: str) -> list[PricePoint]:
    return [PricePoint(D(v), T0 + timedelta(seconds=i + 1)) for i, v in enumerate(values)]


def q8(x: D) -> D:
    return x.quantize(D("0.00000001"))


def test_take_profit_closes_the_position_with_the_pnl_worked_by_hand(paper: PaperExecutor) -> None:
    acted = act_on_signal(signal("BUY"), paper, price=D(40000), now=T0)
    assert acted is not None
    assert acted.decision.approved
    position = acted.position
    assert position is not None
    # 10 % of 10,000 at 40,000 = 0.025 BTC; stop 3 % below, take-profit 6 % above.
    assert (position.qty, position.stop_price, position.take_profit_price) == (D("0.025"), D(38800), D(42400))
    entry = D(40000) * (1 + SLIP)  # 40,020
    entry_fee = q8(D("0.025") * entry * FEE)  # 1.0005
    assert (position.entry_price, position.fees) == (entry, entry_fee)
    working = Order.objects.filter(position=position, status="NEW")
    assert sorted((o.type, o.stop_price) for o in working) == [("STOP_LOSS", D(38800)), ("TAKE_PROFIT", D(42400))]

    changed = paper.watch("BTCUSDT", prices("40100", "38800.01", "42399.99", "42400.50", "38000"), T0)
    assert [p.status for p in changed] == ["closed"]
    position.refresh_from_db()
    exit_ = D("42400.50") * (1 - SLIP)  # the first price at or above 42,400, less the slippage
    exit_fee = q8(D("0.025") * exit_ * FEE)
    pnl = D("0.025") * (exit_ - entry) - entry_fee - exit_fee
    assert pnl == D("56.92251126")  # 0.025 × 2,359.29975 - 1.0005 - 1.05948249
    assert (position.exit_reason, position.exit_price, position.realised_pnl) == ("take_profit", exit_, pnl)
    assert position.closed_at == T0 + timedelta(seconds=4)
    orders = {o.purpose: o for o in Order.objects.filter(position=position)}
    assert {k: v.status for k, v in orders.items()} == {
        "entry": "FILLED",
        "take_profit": "FILLED",
        "stop_loss": "EXPIRED",
    }
    assert Fill.objects.get(order=orders["take_profit"]).price == exit_
    assert paper.cash("BTCUSDT").total == D(10000) + pnl
    assert paper.watch("BTCUSDT", prices("30000"), T0) == []  # closed once only


def test_stop_loss_comes_first(paper: PaperExecutor) -> None:
    position = act_on_signal(signal("BUY"), paper, price=D(40000), now=T0).position  # type: ignore[union-attr]
    assert position is not None
    paper.watch("BTCUSDT", prices("39000", "38799.99", "43000"), T0)
    position.refresh_from_db()
    exit_ = D("38799.99") * (1 - SLIP)
    pnl = D("0.025") * (exit_ - D(40020)) - D("1.0005") - q8(D("0.025") * exit_ * FEE)
    assert (position.exit_reason, position.realised_pnl) == ("stop_loss", pnl)
    assert pnl < -D(30)
    statuses = {o.purpose: o.status for o in Order.objects.filter(position=position)}
    assert statuses == {"entry": "FILLED", "stop_loss": "FILLED", "take_profit": "EXPIRED"}


def test_acting_twice_on_a_signal_acts_once(paper: PaperExecutor) -> None:
    first = act_on_signal(signal("BUY"), paper, price=D(40000), now=T0)
    again = act_on_signal(signal("BUY"), paper, price=D(41000), now=T0 + timedelta(minutes=1))
    assert first is not None
    assert again is not None
    assert again.decision.pk == first.decision.pk
    assert again.position is not None
    assert again.position.pk == first.position.pk  # type: ignore[union-attr]
    assert Order.objects.filter(purpose="entry").count() == 1
    assert RiskDecision.objects.count() == 1


def test_sell_signal_closes_and_the_book_follows(paper: PaperExecutor) -> None:
    act_on_signal(signal("BUY"), paper, price=D(40000), now=T0)
    book = account_book(paper, "BTCUSDT", T0, {"BTCUSDT": D(41000)})
    assert book.open_symbols == {"BTCUSDT"}
    assert book.equity == D(10000) - D("1.0005") + D("0.025") * (D(41000) - D(40020))
    acted = act_on_signal(signal("SELL", minute=5), paper, price=D(41000), now=T0 + timedelta(minutes=5))
    assert acted is not None
    assert acted.position is not None
    assert (acted.position.status, acted.position.exit_reason) == ("closed", "signal")
    statuses = sorted((o.purpose, o.status) for o in Order.objects.filter(position=acted.position))
    assert statuses == [("entry", "FILLED"), ("exit", "FILLED"), ("stop_loss", "CANCELED"), ("take_profit", "CANCELED")]
    # A second BUY is allowed again; a SELL with nothing open is rejected with its reason.
    nothing = act_on_signal(signal("SELL", minute=9), paper, price=D(41000), now=T0)
    assert nothing is not None
    assert (nothing.decision.approved, nothing.decision.rejection) == (False, "no_position")


def test_rejections_are_stored_with_reasons(paper: PaperExecutor) -> None:
    act_on_signal(signal("BUY"), paper, price=D(40000), now=T0)
    again = act_on_signal(signal("BUY", minute=1), paper, price=D(40000), now=T0)
    assert again is not None
    assert (again.decision.approved, again.decision.rejection) == (False, "position_open")
    assert "already open on BTCUSDT" in again.decision.reasons[0]
    assert act_on_signal(signal("HOLD", minute=2), paper, price=D(40000), now=T0) is None


def test_manual_close_and_cancel_then_reconcile_protects_again(paper: PaperExecutor) -> None:
    position = act_on_signal(signal("BUY"), paper, price=D(40000), now=T0).position  # type: ignore[union-attr]
    assert position is not None
    stop = Order.objects.get(position=position, purpose="stop_loss")
    order_cancel(executor=paper, order=stop, now=T0)
    assert Order.objects.get(pk=stop.pk).status == "CANCELED"
    paper.reconcile(T0)
    working = Order.objects.filter(position=position, purpose="stop_loss", status="NEW")
    assert [o.client_order_id for o in working] == [stop.client_order_id + "1"]
    closed = position_close(executor=paper, position=position, now=T0, price=D(39000))
    assert (closed.status, closed.exit_reason) == ("closed", "manual")
    assert closed.realised_pnl == D("0.025") * (D(39000) * (1 - SLIP) - D(40020)) - D("1.0005") - q8(
        D("0.025") * D(39000) * (1 - SLIP) * FEE
    )
    assert Order.objects.filter(position=position, status="NEW").count() == 0
    assert Position.objects.get(pk=position.pk).status == "closed"


def test_an_unknown_instrument_is_a_stored_rejection(paper: PaperExecutor) -> None:
    acted = act_on_signal(signal("BUY", symbol="XRPUSDT"), paper, price=D(1), now=T0)
    assert acted is not None
    assert (acted.decision.approved, acted.decision.rejection, acted.decision.reasons) == (
        False,
        "unavailable",
        ["nothing traded: binance:XRPUSDT is not a stored instrument (run seed_instruments)"],
    )
