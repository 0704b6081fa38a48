"""Combined-stream frames through ``parse_stream_message``: the documented frame, the simulator's live frames,
frames without a trade, and malformed frames. Whatever the frame, the result is the one ``parse_agg_trade``
gives for its ``data`` (the same tick, or a ValueError with the same words), so the short path for
well-formed frames changes nothing but the time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.sync.client import connect

from exchangesim.server import Simulator
from markets.exchanges.base import Source, TradeTick
from markets.exchanges.binance import parse_agg_trade
from markets.exchanges.binance.stream import parse_stream_message, stream_url

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
DATA = {
    "e": "aggTrade",
    "E": 1723161255343,
    "s": "BTCUSDT",
    "a": 3041249807,
    "p": "61837.63000000",
    "q": "0.06800000",
    "f": 3735683259,
    "l": 3735683260,
    "T": 1723161255342,
    "m": True,
    "M": True,
}


def frame(data: Any) -> str:
    return json.dumps({"stream": "btcusdt@aggTrade", "data": data})


def outcome(parse: Any, *args: Any, **kwargs: Any) -> TradeTick | str:
    """The tick, or the words of the ValueError."""
    try:
        return parse(*args, **kwargs)
    except ValueError as exc:
        return f"ValueError: {exc}"


def test_documented_frame() -> None:
    """The docstring's frame, field by field: Decimal as written, UTC time from ms, m=true → taker sold."""
    tick = parse_stream_message(frame(DATA), received_at=NOW)
    assert tick == TradeTick(
        "binance",
        "BTCUSDT",
        3041249807,
        Decimal("61837.63000000"),
        Decimal("0.06800000"),
        "sell",
        datetime(2024, 8, 8, 23, 54, 15, 342000, tzinfo=UTC),
        NOW,
        Source.WS,
        3735683259,
        3735683260,
    )
    assert str(tick.price) == "61837.63000000"
    assert tick.ts.tzinfo is UTC
    assert parse_stream_message(frame({**DATA, "m": False}).encode(), received_at=NOW).taker_side == "buy"


def test_frames_without_a_trade() -> None:
    """Answers to SUBSCRIBE and the like carry no data: no tick."""
    assert parse_stream_message('{"result": null, "id": 1}', received_at=NOW) is None
    assert parse_stream_message('{"stream": "btcusdt@aggTrade", "data": null}', received_at=NOW) is None


def test_simulator_frames_parse_as_parse_agg_trade_does(sim_thread: Simulator) -> None:
    """Live combined-stream frames of the simulator: contiguous ids, each tick the one parse_agg_trade gives."""
    with connect(stream_url(sim_thread.ws_url, ["BTCUSDT"]), open_timeout=5) as ws:
        texts = [ws.recv(timeout=5) for _ in range(50)]
    ticks = [parse_stream_message(t, received_at=NOW) for t in texts]
    assert [t.trade_id for t in ticks] == list(range(ticks[0].trade_id, ticks[0].trade_id + 50))
    for text, tick in zip(texts, ticks, strict=True):
        data = json.loads(text)["data"]
        assert tick == parse_agg_trade(data, received_at=NOW, source=Source.WS)
        assert str(tick.price) == data["p"]
        assert str(tick.qty) == data["q"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "stream frame is not JSON"),
        (b'{"data": "\xff"}', "stream frame is not JSON"),
        ("[1, 2]", "stream frame is not an object"),
        (frame([1, 2]), "unexpected stream frame"),
        (frame({**DATA, "e": "trade"}), "unexpected stream frame"),
        (frame({k: v for k, v in DATA.items() if k != "p"}), "aggTrade field 'p' is missing"),
        (frame({**DATA, "p": 61837.63}), "'p' must be a decimal string"),
        (frame({**DATA, "q": "abc"}), "'q' must be a decimal string"),
        (frame({**DATA, "q": "NaN"}), "'q' must be a finite non-negative number"),
        (frame({**DATA, "p": "-1"}), "'p' must be a finite non-negative number"),
        (frame({**DATA, "a": "3041249807"}), "'a' must be a non-negative integer"),
        (frame({**DATA, "f": -1}), "'f' must be a non-negative integer"),
        (frame({**DATA, "l": True}), "'l' must be a non-negative integer"),
        (frame({**DATA, "T": 1723161255342.5}), "'T' must be a non-negative integer"),
        (frame({**DATA, "T": 10**20}), "'T' is not a time in milliseconds"),
        (frame({**DATA, "m": "true"}), "'m' must be true or false"),
        (frame({**DATA, "s": ""}), "'s' must be a non-empty string"),
    ],
)
def test_malformed_frames(text: str | bytes, words: str) -> None:
    """Each defect is a ValueError naming it (the field, for a trade's)."""
    with pytest.raises(ValueError, match=words):
        parse_stream_message(text, received_at=NOW)


def test_naive_receive_time_is_refused() -> None:
    """A naive received_at would be stored as if it were UTC: refused, as parse_agg_trade does."""
    with pytest.raises(ValueError, match="received_at must be a timezone-aware"):
        parse_stream_message(frame(DATA), received_at=datetime(2026, 1, 1))  # noqa: DTZ001


ODD_VALUES = [
    ...,
    None,
    True,
    False,
    0,
    7,
    -1,
    1.5,
    float("nan"),
    float("inf"),
    10**20,
    -(10**20),
    [1],
    {},
    "",
    "0",
    "1.50",
    "-0",
    "-2",
    "1e3",
    "NaN",
    "Infinity",
    "-Infinity",
    "sNaN",
    " 7 ",
    "1_000",
    "x",
    "aggTrade",
    "BTCUSDT",
]
ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), None]


def assert_parses_as_parse_agg_trade(data: dict[str, Any], received_at: datetime) -> None:
    """The same tick as parse_agg_trade (to the digits of its decimals), or the same error; a ``data`` that is
    not an aggTrade's is refused as a whole."""
    got = outcome(parse_stream_message, frame(data), received_at=received_at)
    if data.get("e") != "aggTrade":
        assert isinstance(got, str)
        assert "unexpected stream frame" in got
        return
    want = outcome(parse_agg_trade, data, received_at=received_at, source=Source.WS)
    assert got == want
    assert repr(got) == repr(want)


@pytest.mark.parametrize("key", sorted(DATA))
@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_any_value_of_a_field_parses_as_parse_agg_trade_does(key: str, value: Any) -> None:
    """One field removed (``...``) or of any JSON type or value: as parse_agg_trade parses the data."""
    data = {k: v for k, v in {**DATA, key: value}.items() if v is not ...}
    assert_parses_as_parse_agg_trade(data, NOW)


@given(
    changes=st.dictionaries(st.sampled_from(sorted(DATA)), st.sampled_from(ODD_VALUES), max_size=4),
    zone=st.sampled_from(ZONES),
)
def test_any_data_parses_as_parse_agg_trade_does(changes: dict[str, Any], zone: timezone | None) -> None:
    """Several fields changed at once, with an aware or naive receive time: as parse_agg_trade parses them."""
    data = {k: v for k, v in {**DATA, **changes}.items() if v is not ...}
    assert_parses_as_parse_agg_trade(data, NOW.replace(tzinfo=zone))
