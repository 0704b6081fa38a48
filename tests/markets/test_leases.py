"""The fair share of keys among live workers (markets.leases.share.plan), decided without I/O: exact partitions
with shares that differ by at most one, a newcomer's share taken gradually, a dead worker's keys taken over,
keys no longer wanted given back at once, and never a key another worker holds."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from markets.leases import Snapshot, plan, quotas

KEYS = frozenset(f"binance:SYM{i:03d}USDT" for i in range(200))


class World:
    """Leases held in memory, and the rounds of workers acting on them as the book does: release, then take free
    keys in the plan's order until ``want`` are taken (a key taken meanwhile is skipped)."""

    def __init__(self, keys: frozenset[str] = KEYS, owners: dict[str, str] | None = None) -> None:
        self.keys = keys
        self.owners: dict[str, str] = dict(owners or {})
        self.released: Counter[str] = Counter()

    def snapshot(self, me: str, workers: set[str]) -> Snapshot:
        return Snapshot(me=me, keys=self.keys, owners=dict(self.owners), workers=frozenset(workers))

    def act(self, snapshot: Snapshot, release_step: float = 0.25) -> None:
        decided = plan(snapshot, release_step=release_step)
        for key in decided.release:
            assert self.owners.pop(key) == snapshot.me
            self.released[snapshot.me] += 1
        taken = 0
        for key in decided.acquire:
            if taken == decided.want:
                break
            if key not in self.owners:  # the conditional update in the database
                self.owners[key] = snapshot.me
                taken += 1

    def round(self, workers: set[str], *, together: bool = False, order: list[str] | None = None) -> None:
        """Every worker acts once, one after the other; ``together``: all plan from the same snapshot first."""
        order = order or sorted(workers)
        if together:
            for snapshot in [self.snapshot(w, workers) for w in order]:
                self.act(snapshot)
        else:
            for w in order:
                self.act(self.snapshot(w, workers))

    def shares(self) -> Counter[str]:
        return Counter(owner for key, owner in self.owners.items() if key in self.keys)


def assert_partition(world: World, workers: set[str]) -> None:
    shares = world.shares()
    assert set(world.owners) >= world.keys, f"unheld: {sorted(world.keys - set(world.owners))[:5]}"
    assert set(shares) <= workers
    counts = [shares.get(w, 0) for w in workers]
    assert max(counts) - min(counts) <= 1, shares


@pytest.mark.parametrize(("workers", "expected"), [(1, [200]), (2, [100, 100]), (3, [67, 67, 66])])
def test_a_fresh_group_is_partitioned_in_one_round(workers: int, expected: list[int]) -> None:
    """1, 2 or 3 live workers over 200 free keys: after one round each, every key has one owner and the shares are
    200; 100 and 100; 67, 67 and 66."""
    names = {f"w{i}" for i in range(workers)}
    world = World()
    world.round(names)
    assert_partition(world, names)
    assert sorted(world.shares().values(), reverse=True) == expected


def test_shares_differ_by_at_most_one_where_a_ceiling_would_not() -> None:
    """10 keys over 4 workers are shared 3, 3, 2, 2 (a ceil(10/4) cap alone would allow 3, 3, 3, 1)."""
    names = {"a", "b", "c", "d"}
    keys = frozenset(f"k{i}" for i in range(10))
    world = World(keys, {f"k{i}": "abc"[i % 3] for i in range(9)})
    for _ in range(3):
        world.round(names)
    assert sorted(world.shares().values()) == [2, 2, 3, 3]
    assert quotas(10, {"a": 3, "b": 3, "c": 3}, names) == {"a": 3, "b": 3, "c": 2, "d": 2}


def test_a_newcomer_takes_its_share_gradually() -> None:
    """Two workers hold 100 keys each; a third arrives. Each holder gives back at most a quarter of what it holds
    a round (25, then 8), never more than its excess, and the newcomer reaches 66 in two rounds, its count never
    falling."""
    world = World(owners={k: ("a" if i % 2 else "b") for i, k in enumerate(sorted(KEYS))})
    names = {"a", "b", "c"}
    seen = []
    for _ in range(2):
        before = Counter(world.released)
        world.round(names, order=["a", "b", "c"])
        gave = world.released - before
        assert gave["a"] <= 25
        assert gave["b"] <= 25
        seen.append(world.shares()["c"])
    assert seen == [50, 66]
    assert_partition(world, names)
    assert world.released == Counter({"a": 33, "b": 33})


def test_a_dead_workers_keys_are_taken_over_in_one_round() -> None:
    """Three workers share 200 keys; one dies (its leases expire, its heartbeat too): after one round of each
    survivor they hold all 200, 100 each."""
    world = World()
    world.round({"a", "b", "c"})
    world.owners = {k: o for k, o in world.owners.items() if o != "c"}
    world.round({"a", "b"})
    assert_partition(world, {"a", "b"})
    assert world.shares() == Counter({"a": 100, "b": 100})


def test_keys_no_longer_wanted_are_given_back_at_once_and_others_never_taken() -> None:
    """A worker gives back every key that left the set in one round, however many; it never lists a key held by
    another live worker to take, and never one outside the set."""
    owners = {k: "a" for k in sorted(KEYS)[:100]} | {k: "b" for k in sorted(KEYS)[100:]}
    keys = frozenset(sorted(KEYS)[:50]) | frozenset(sorted(KEYS)[100:150]) | {"binance:NEWUSDT"}
    decided = plan(Snapshot("a", keys, owners, frozenset({"a", "b"})))
    assert set(decided.release) == set(sorted(KEYS)[50:100])
    assert decided.acquire == ("binance:NEWUSDT",)
    assert decided.want == 1  # 101 keys over two workers holding 50 each: the first by id gets 51
    assert plan(Snapshot("b", keys, owners, frozenset({"a", "b"}))).release == tuple(sorted(KEYS)[150:])


def test_more_workers_than_keys() -> None:
    """3 keys and 5 live workers: three hold one each, two hold none."""
    keys = frozenset({"x", "y", "z"})
    names = {f"w{i}" for i in range(5)}
    world = World(keys)
    world.round(names)
    assert sorted(world.shares().values()) == [1, 1, 1]


def test_a_worker_not_yet_listed_counts_itself() -> None:
    """A worker whose heartbeat is not in the snapshot yet still counts itself among the live workers."""
    assert plan(Snapshot("new", KEYS, {}, frozenset({"a"}))).want == 100


def test_release_step_is_a_fraction() -> None:
    with pytest.raises(ValueError, match="release_step=0"):
        plan(Snapshot("a", KEYS, {}, frozenset()), release_step=0)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    keys=st.integers(0, 120),
    workers=st.integers(1, 6),
    start=st.lists(st.integers(0, 6), max_size=120),
    together=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_start_settles_into_an_exact_fair_partition(
    keys: int, workers: int, start: list[int], together: bool, seed: int
) -> None:
    """From any holding (keys held by live workers or free), with rounds in any order, one after another or all
    planned from the same snapshot: within 12 rounds every key has exactly one owner, shares differ by at most
    one, and the next round moves nothing."""
    names = [f"w{i}" for i in range(workers)]
    key_set = frozenset(f"k{i}" for i in range(keys))
    owners = {f"k{i}": names[o] for i, o in enumerate(start[:keys]) if o < workers}
    world = World(key_set, owners)
    rng = random.Random(seed)
    for _ in range(12):
        world.round(set(names), together=together, order=rng.sample(names, len(names)))
    assert_partition(world, set(names))
    settled = dict(world.owners)
    world.round(set(names), together=together, order=rng.sample(names, len(names)))
    assert world.owners == settled
