"""Who should hold which keys: each live worker's fair share, decided from a snapshot without any I/O.

Every worker of a group runs :func:`plan` on what the database showed it (the live owner of each key, the live
workers) and acts on its own leases only: it releases what it holds beyond its quota (a part at a time) and takes
free keys up to its quota. Nobody takes a key another worker holds: a key changes hands only once it is free
(released, or its lease expired because its holder died or stopped renewing).

Quotas: with ``T`` keys and ``n`` live workers every worker gets ``T // n`` keys and ``T % n`` of them one more,
so shares differ by at most one (``ceil(T / n)`` for everybody would allow 3, 3, 3, 1 for 10 keys over 4 workers).
The extra ones go to the workers that hold the most already (ties by id), so a settled group stays put and every
worker, reading the same snapshot, computes the same quotas.

Which keys: each worker ranks keys by a hash of (worker, key) (rendezvous hashing). Two workers taking free keys
at the same moment mostly try different ones, and a worker gives up first the keys it likes least.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one worker saw in the database at the start of a round."""

    me: str
    keys: frozenset[str]  # what the group must hold (an exchange's streamed instruments)
    owners: Mapping[str, str]  # key -> worker holding its live lease; a key absent is free
    workers: frozenset[str]  # the live workers (heartbeat not expired); ``me`` counts whether listed or not


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``me`` does this round: release ``release``, then take the first ``want`` of ``acquire`` it can get."""

    quota: int
    release: tuple[str, ...]
    acquire: tuple[str, ...]  # every free key, most preferred first (some may be taken by others meanwhile)
    want: int


def preference(worker: str, key: str) -> int:
    """The rank of ``key`` for ``worker``: lower is preferred (stable across processes and hosts)."""
    digest = hashlib.blake2b(f"{worker}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def quotas(total: int, held: Mapping[str, int], workers: Iterable[str]) -> dict[str, int]:
    """How many of ``total`` keys each of ``workers`` should hold, given how many each ``held``: ``total // n``,
    plus one for the ``total % n`` workers that hold the most (ties broken by worker id)."""
    ranked = sorted(set(workers), key=lambda w: (-held.get(w, 0), w))
    if not ranked:
        return {}
    base, extra = divmod(total, len(ranked))
    return {w: base + (1 if i < extra else 0) for i, w in enumerate(ranked)}


def plan(snapshot: Snapshot, *, release_step: float = 0.25) -> Plan:
    """What ``snapshot.me`` should release and acquire to move towards its fair share.

    Keys it holds that are no longer wanted are released at once. Beyond its quota it releases at most
    ``ceil(release_step * held)`` keys a round (at least one), so a newcomer's share moves over in a few rounds
    instead of leaving many keys unheld at once. Below its quota it takes free keys, as many as it lacks.
    """
    if not 0 < release_step <= 1:
        raise ValueError(f"release_step={release_step!r}: expected a fraction in (0, 1]")
    me, keys = snapshot.me, snapshot.keys
    held = Counter(owner for key, owner in snapshot.owners.items() if key in keys)
    quota = quotas(len(keys), held, snapshot.workers | {me})[me]
    mine = [key for key, owner in snapshot.owners.items() if owner == me]
    unwanted = sorted(key for key in mine if key not in keys)
    kept = sorted((key for key in mine if key in keys), key=lambda k: preference(me, k))
    excess = len(kept) - quota
    release = list(unwanted)
    if excess > 0:
        step = max(1, math.ceil(release_step * len(kept)))
        release += kept[::-1][: min(excess, step)]  # the least preferred first
    free = sorted((key for key in keys if key not in snapshot.owners), key=lambda k: preference(me, k))
    return Plan(quota=quota, release=tuple(release), acquire=tuple(free), want=max(0, quota - len(kept)))
