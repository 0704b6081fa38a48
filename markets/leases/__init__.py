"""Leases in MongoDB through which any number of workers, on one host or many, share a group of keys (an
exchange's instruments) and elect the one that runs a singleton job (trading).

- ``share``: :func:`plan`, the pure decision of one round (each live worker's fair share; what to release, what
  to take), and its :class:`Snapshot` and :class:`Plan`;
- ``book``: :class:`LeaseBook`, one worker's leases and heartbeat, written with atomic single-document updates
  (majority write concern) and judged by the database's clock (``$$NOW``), and :class:`Fence` for singletons.

Guarantees (lease ``L`` seconds, rounds every ``R``, ``R <= L / 2``):

- a key is held by at most one worker at a time *in the database*; a worker learns that it lost a key at its next
  round (``LeaseChange.lost``) and must stop streaming it then: two workers may both stream a key for up to about
  one round, which doubles nothing (storage is idempotent by trade id);
- a worker that dies loses its leases at most ``L`` after its last round; the others take them over at their first
  round after that (within ``L + R``), and a newcomer reaches its share in a few rounds;
- a singleton lease (``hold_singleton("trading")``) is held by at most one worker; its holder must check its
  :class:`Fence` before acting (``valid``: local, no I/O; ``confirm``: one majority read), and may record the
  fencing token with what it does, so a late actor can be detected: the token moves on with every new owner.

The package imports nothing of the stream, signals or orders.
"""

from .book import LEASES, WORKERS, Fence, LeaseBook, LeaseChange, lease_book, worker_id
from .share import Plan, Snapshot, plan, preference, quotas

__all__ = [
    "LEASES",
    "WORKERS",
    "Fence",
    "LeaseBook",
    "LeaseChange",
    "Plan",
    "Snapshot",
    "lease_book",
    "plan",
    "preference",
    "quotas",
    "worker_id",
]
