"""Stored signals over a real mongod: one row per strategy and candle, replaced when the candle is decided again,
and ``evaluate_stored`` decides stored candles exactly as the pure evaluator does."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from pymongo.errors import DuplicateKeyError

from markets.history import InvalidRequest
from signals.evaluator import Evaluator
from signals.indicators import DEFAULT_WINDOW
from signals.models import Signal
from signals.replay import replay
from signals.rules import STRATEGY, VERSION, Action, Decision
from signals.services import StoreResult, evaluate_stored, signal_doc, signals_store
from tests.signals.stored import store_candles, store_instrument
from tests.signals.walks import MINUTE, T0, random_walk

WARM, RANGE = DEFAULT_WINDOW - 1, 600


@pytest.fixture(scope="module")
def walk() -> list:
    """A random walk with a full warm-up before the evaluated range and signals in it."""
    return random_walk(WARM + RANGE, seed=7)


def range_start() -> object:
    return T0 + WARM * MINUTE


def collection() -> object:
    return connection.database[Signal._meta.db_table]


def decisions_of(bars: list) -> list[Decision]:
    ev = Evaluator("binance", "BTCUSDT", "1m", keep=len(bars))
    ev.warm(bars)
    return ev.decide_from(range_start())


@pytest.mark.django_db
def test_the_same_candle_decided_twice_is_one_row_and_the_second_replaces(walk: list) -> None:
    """Storing a candle's decision again keeps one row: the fields are the new decision's, ``created_at`` stays and
    ``updated_at`` moves."""
    first = next(d for d in decisions_of(walk) if d.action is not Action.HOLD)
    t1, t2 = T0 + timedelta(days=400), T0 + timedelta(days=401)
    assert signals_store(decisions=[first], now=t1) == StoreResult(1, 0)
    second = dataclasses.replace(
        first, action=Action.HOLD, confidence=Decimal("0.20"), net=Decimal("0.20"), reasons=("recomputed",)
    )
    assert signals_store(decisions=[second], now=t2) == StoreResult(0, 1)
    rows = list(Signal.objects.all())
    assert len(rows) == 1
    row = rows[0]
    assert (row.strategy, row.version, row.exchange, row.symbol, row.interval) == (
        STRATEGY,
        VERSION,
        "binance",
        "BTCUSDT",
        "1m",
    )
    assert row.candle_open_time == first.open_time
    assert (row.decision, row.confidence, row.net, row.reasons) == (
        "HOLD",
        Decimal("0.20"),
        Decimal("0.20"),
        ["recomputed"],
    )
    assert row.created_at == t1
    assert row.updated_at == t2
    assert set(row.indicators) >= {"close", "sma20", "sma50", "rsi14", "macd", "bb_upper", "atr14"}


@pytest.mark.django_db
def test_a_repeated_candle_in_one_call_stores_the_last(walk: list) -> None:
    """Two decisions for one candle in one batch: one row, the later decision."""
    d = decisions_of(walk)[0]
    later = dataclasses.replace(d, reasons=("later",))
    assert signals_store(decisions=[d, later]) == StoreResult(1, 0)
    assert [r.reasons for r in Signal.objects.all()] == [["later"]]


@pytest.mark.django_db
def test_the_unique_index_refuses_a_raw_duplicate(walk: list) -> None:
    """The backend's unique index is partial on BSON type; the stored key fields (strings, a date) are of those
    types, so a raw insert of the same key is refused (ARCHITECTURE §5)."""
    d = decisions_of(walk)[0]
    signals_store(decisions=[d])
    with pytest.raises(DuplicateKeyError):
        collection().insert_one(signal_doc(d))
    assert collection().count_documents({}) == 1


@pytest.mark.django_db
def test_evaluate_stored_matches_the_evaluator_and_is_idempotent(walk: list) -> None:
    """``evaluate_stored`` warms from the stored candles before ``start`` and decides ``[start, end)`` as the
    evaluator does on the same candles; running it again replaces every row and adds none. Every candle is
    stored, HOLD included."""
    store_instrument()
    store_candles(walk)
    start, end = range_start(), T0 + len(walk) * MINUTE
    first = evaluate_stored(exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end)
    assert first.decisions == decisions_of(walk)
    assert first.warm_up == WARM
    assert first.stored == StoreResult(RANGE, 0)
    counts = Counter(d.action for d in first.decisions)
    assert counts[Action.BUY]
    assert counts[Action.SELL]
    assert Signal.objects.count() == RANGE
    again = evaluate_stored(exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end)
    assert again.decisions == first.decisions
    assert again.stored == StoreResult(0, RANGE)
    assert Signal.objects.count() == RANGE
    stored = Counter(Signal.objects.values_list("decision", flat=True))
    assert stored == {str(a): n for a, n in counts.items()}


@pytest.mark.django_db
def test_a_backfill_rewrite_recomputes_to_the_corrected_series(walk: list) -> None:
    """After a candle is rewritten in storage, evaluating from it again stores the corrected series' decisions:
    the rows are replaced (same count), and they equal a replay of the corrected candles."""
    store_instrument()
    store_candles(walk)
    start, end = range_start(), T0 + len(walk) * MINUTE
    evaluate_stored(exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end)
    k = WARM + 200
    bent = [
        dataclasses.replace(b, close=b.close * Decimal("0.98"), low=min(b.low, b.close * Decimal("0.98")))
        for b in walk[k : k + 5]
    ]
    store_candles(bent)
    corrected = walk[:k] + bent + walk[k + 5 :]
    redo = evaluate_stored(exchange="binance", symbol="BTCUSDT", interval="1m", start=walk[k].open_time, end=end)
    assert redo.stored == StoreResult(0, RANGE - 200)
    assert Signal.objects.count() == RANGE
    expected = replay(corrected, start=start)
    stored = {r.candle_open_time: r.decision for r in Signal.objects.all()}
    assert stored == {d.open_time: str(d.action) for d in expected}
    assert stored != {d.open_time: str(d.action) for d in decisions_of(walk)}  # the rewrite changed something


@pytest.mark.django_db
def test_evaluate_stored_carries_the_stored_cooldown_on(walk: list) -> None:
    """A range evaluated from a candle just after a stored BUY holds back a BUY within the cooldown, as the live
    stream that stored it would: the stored signals before ``start`` are restored."""
    store_instrument()
    store_candles(walk)
    start, end = range_start(), T0 + len(walk) * MINUTE
    whole = evaluate_stored(exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end).decisions
    signal = next(d for d in whole if d.action is not Action.HOLD)
    resumed = evaluate_stored(
        exchange="binance", symbol="BTCUSDT", interval="1m", start=signal.open_time + MINUTE, end=end
    ).decisions
    assert resumed == [d for d in whole if d.open_time > signal.open_time]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"interval": "2m"}, "interval"),
        ({"start": T0 + timedelta(hours=2), "end": T0 + timedelta(hours=1)}, "start"),
        ({"symbol": "DOGEUSDT"}, "symbol"),
        ({"exchange": "nyse"}, "exchange"),
    ],
)
def test_evaluate_stored_names_a_bad_argument(kwargs: dict, field: str) -> None:
    store_instrument()
    args = {
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "interval": "1m",
        "start": T0,
        "end": T0 + timedelta(hours=1),
        **kwargs,
    }
    with pytest.raises(InvalidRequest) as caught:
        evaluate_stored(**args)
    assert caught.value.field == field
