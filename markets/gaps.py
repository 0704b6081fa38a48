"""Gap arithmetic over trade ids. Pure: no Django.

Trade ids of one (exchange, symbol) are contiguous on exchanges whose capabilities say so, so a
missing id is a missed trade. Ranges are inclusive ``(first, last)`` pairs of ids.
"""

from __future__ import annotations

from collections.abc import Iterable


def id_holes(sorted_ids: Iterable[int], first: int, last: int) -> list[tuple[int, int]]:
    """The ranges of ids in ``[first, last]`` absent from ``sorted_ids`` (ascending; repeats and ids outside
    the range are ignored)."""
    holes: list[tuple[int, int]] = []
    expected = first
    for i in sorted_ids:
        if i < expected:
            continue
        if i > last:
            break
        if i > expected:
            holes.append((expected, i - 1))
        expected = i + 1
    if expected <= last:
        holes.append((expected, last))
    return holes


def hole_size(holes: Iterable[tuple[int, int]]) -> int:
    """How many ids the holes hold."""
    return sum(b - a + 1 for a, b in holes)
