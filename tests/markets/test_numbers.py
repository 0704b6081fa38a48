"""markets.numbers: one printed form for prices and quantities (API, admin, page)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markets.numbers import places, plain


@pytest.mark.parametrize(
    ("value", "tick", "printed"),
    [
        ("60244.8", "0.01", "60244.80"),
        ("60383.70000000", "0.01000000", "60383.70"),
        ("-1.99361411020000000000", None, "-1.9936141102"),
        ("0.010000000000000000", "0.00001", "0.01000"),
        ("0.010000000000000000", None, "0.01"),
        ("1E-8", None, "0.00000001"),
        ("6.03837E+4", "0.01", "60383.70"),
        ("0E-8", "0.01", "0.00"),
        ("42", "0.1", "42.0"),
        ("42.00000000", "1.00000000", "42"),
        ("0.12345", "0.01", "0.12345"),  # finer than the tick (an average): nothing is rounded
    ],
)
def test_a_value_prints_plainly_to_its_tick(value, tick, printed):
    assert plain(value, places(tick)) == printed
    assert plain(Decimal(value), places(tick)) == printed


def test_places_of_an_increment():
    assert [places(x) for x in ("0.01000000", "1.00000000", "10", None, "0", Decimal("1E-8"))] == [2, 0, 0, 0, 0, 8]


def test_none_stays_none_and_a_non_number_is_named():
    assert plain(None, 2) is None
    with pytest.raises(ValueError, match="'NaN' is not a finite number"):
        plain("NaN")


@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=12, min_value=-(10**9), max_value=10**9),
    st.integers(0, 10),
)
def test_printing_never_changes_the_value_nor_uses_an_exponent(value, n):
    text = plain(value, n)
    assert Decimal(text) == value
    assert "E" not in text.upper()
    assert len(text.partition(".")[2]) >= n
