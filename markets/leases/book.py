"""``LeaseBook``: one worker's leases in MongoDB, written and judged by the database's clock.

Two collections of the default database, reached through pymongo with majority write and read concern:

- ``lease`` (:data:`LEASES`), one document per lease: ``_id`` ``"<group>:<key>"`` (``"binance:BTCUSDT"``) or
  ``"singleton:<name>"``; ``group``, ``key``, ``owner`` (a worker id, or null once released), ``expires``,
  ``acquired_at`` and ``token``, the fencing token, incremented whenever the lease passes to another owner;
- ``lease_worker`` (:data:`WORKERS`), one heartbeat per worker and group: ``_id`` ``"<group>:<worker>"``,
  ``worker`` (``host:pid:random``), ``group``, ``expires``, ``held`` (how many keys it held at its last round),
  ``host``, ``pid``, ``started_at``; a TTL index removes a dead worker's document an hour after it expired.

Every time is the database's: ``expires`` is written as ``$$NOW + lease`` by an update pipeline and compared
with ``$$NOW`` in ``$expr``, so workers whose clocks disagree still agree on who holds what. The book reads no
wall clock; its only local time is a monotonic ``clock``, for a singleton's conservative local deadline
(:class:`Fence`).

Every write that takes a lease is one atomic single-document update by ``_id`` whose filter states the condition
(free, expired, or mine); renewals and give-backs change only documents this worker owns, each on its own. No
transaction, nothing that needs a single node: both collections may be sharded (hashed ``_id``) or left
unsharded. A round's operations share one client-side timeout (``pymongo.timeout``): a database that does not
answer makes the round fail (it raises a ``PyMongoError``), never hang past the lease.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import pymongo
from pymongo import ReadPreference, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from .share import Snapshot, plan

LEASES = "lease"
WORKERS = "lease_worker"
SINGLETON = "singleton"
DUPLICATE_KEY = 11000
# A singleton's holder trusts its lease for this fraction of the lease, counted on its own monotonic clock from
# the moment it sent the renewal (before the database wrote the expiry): the margin covers clock-rate drift.
TRUST = 0.9
NOW = "$$NOW"
LIVE = {"$gt": ["$expires", NOW]}  # a missing or null expiry sorts below every date: not live
SEEN = {"key": 1, "owner": 1, "live": LIVE}


class LeaseChange(NamedTuple):
    """After a round: what the worker holds, what it gained, and what it must stop (taken, expired, released)."""

    held: frozenset[str]
    gained: frozenset[str]
    lost: frozenset[str]


@dataclass(frozen=True, slots=True)
class Fence:
    """A singleton lease held: its fencing token, and until when (on the book's clock) the holder may act."""

    name: str
    owner: str
    token: int
    deadline: float


def worker_id() -> str:
    """A new worker id, ``host:pid:random``: unique even when a pid is reused or hosts share a name."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class LeaseBook:
    """One worker's leases on the keys of one ``group`` (an exchange's instruments), plus named singletons.

    Call :meth:`rebalance` (or at least :meth:`renew`) every ``renew_seconds``: each round heartbeats, renews what
    the worker holds and says what it gained and lost. Leases last ``lease_seconds``; a worker that stops calling
    loses them that long after its last round, and the others take its keys over on their next round.
    One thread drives the rounds (``renew``, ``rebalance``, ``hold_singleton``, ``release_all``); ``valid`` and
    ``confirm`` may be called from any thread (the trader's).
    """

    def __init__(
        self,
        database: Callable[[], Database[Any]],
        *,
        group: str,
        me: str | None = None,
        lease_seconds: float = 15.0,
        renew_seconds: float = 3.0,
        release_step: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not group or ":" in group or group == SINGLETON:
            raise ValueError(f"group={group!r}: expected a name without ':' other than {SINGLETON!r}")
        if not 0 < renew_seconds * 2 <= lease_seconds:
            raise ValueError(
                f"renew_seconds={renew_seconds!r}: expected at most half of lease_seconds={lease_seconds!r}"
            )
        self.group = group
        self.me = me or worker_id()
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.release_step = release_step
        self._database = database
        self._clock = clock
        self._held: frozenset[str] = frozenset()
        self._indexed = False

    @property
    def held(self) -> frozenset[str]:
        """The keys held after the last round."""
        return self._held

    # -- rounds ---------------------------------------------------------------------------------------------------

    def renew(self) -> LeaseChange:
        """Heartbeat and extend every lease this worker still owns; a lease another worker took meanwhile shows up
        in ``lost`` (the worker must stop streaming it now)."""
        with pymongo.timeout(self.lease_seconds / 2):
            leases, workers = self._collections()
            self._heartbeat(workers)
            self._extend(leases)
            return self._settle(self._mine(leases))

    def rebalance(self, keys: Iterable[str]) -> LeaseChange:
        """A round towards this worker's fair share of ``keys`` (the group's whole key set, the same for every
        worker): heartbeat, renew, release keys no longer wanted or beyond the quota, take free ones."""
        wanted = frozenset(keys)
        with pymongo.timeout(self.lease_seconds / 2):
            leases, workers = self._collections()
            self._heartbeat(workers)
            self._extend(leases)
            docs = list(leases.aggregate([{"$match": {"group": self.group}}, {"$project": SEEN}]))
            owners = {d["key"]: d["owner"] for d in docs if d["live"] and d["owner"] is not None}
            live = frozenset(d["worker"] for d in workers.find({"group": self.group, "$expr": LIVE}, {"worker": 1}))
            decided = plan(Snapshot(self.me, wanted, owners, live), release_step=self.release_step)
            if decided.release:
                leases.update_many(
                    {"_id": {"$in": [self._id(k) for k in decided.release]}, "owner": self.me}, _released()
                )
            self._take(leases, decided.acquire, decided.want, existing={d["key"] for d in docs})
            return self._settle(self._mine(leases))

    def release_all(self) -> frozenset[str]:
        """On a clean stop: give back every lease (keys and singletons) and the heartbeat, so the others take over
        on their next round instead of after the lease; returns the keys given back. If the database does not
        answer this raises (a ``PyMongoError``) and the leases run out by themselves."""
        given = self._held
        with pymongo.timeout(self.lease_seconds / 2):
            leases, workers = self._collections()
            leases.update_many({"owner": self.me}, _released())
            workers.delete_one({"_id": self._id(self.me)})
        self._held = frozenset()
        return given

    # -- singletons -----------------------------------------------------------------------------------------------

    def hold_singleton(self, name: str) -> Fence | None:
        """Take or renew the singleton lease ``name`` (``"trading"``); call it every round. Returns the
        :class:`Fence` while this worker holds it, None while another live worker does."""
        query = {"_id": f"{SINGLETON}:{name}", "$expr": self._free_or_mine()}
        update = self._acquired(SINGLETON, name)
        after = pymongo.ReturnDocument.AFTER
        with pymongo.timeout(self.lease_seconds / 2):
            leases, _ = self._collections()
            sent = self._clock()  # before the write: the database's expiry is at least a lease after this
            doc = leases.find_one_and_update(query, update, projection={"token": 1}, return_document=after)
            if doc is None:  # another worker holds it, or nobody ever did: then its document is created unowned
                self._create(leases, SINGLETON, [name])
                doc = leases.find_one_and_update(query, update, projection={"token": 1}, return_document=after)
        if doc is None:
            return None
        return Fence(name=name, owner=self.me, token=int(doc["token"]), deadline=sent + self.lease_seconds * TRUST)

    def valid(self, fence: Fence) -> bool:
        """Whether ``fence`` may still be acted on by its local deadline (no I/O: check it before every order)."""
        return fence.owner == self.me and self._clock() < fence.deadline

    def confirm(self, fence: Fence) -> bool:
        """Whether the database still shows ``fence``: this worker the owner, the same token, the lease not
        expired by the database's clock; and its local deadline not passed. One majority read."""
        if not self.valid(fence):
            return False
        with pymongo.timeout(self.lease_seconds / 2):
            leases, _ = self._collections()
            query = {"_id": f"{SINGLETON}:{fence.name}", "owner": self.me, "token": fence.token, "$expr": LIVE}
            return leases.count_documents(query, limit=1) == 1

    # -- the database ---------------------------------------------------------------------------------------------

    def _collections(self) -> tuple[Collection[Any], Collection[Any]]:
        database = self._database().with_options(
            read_preference=ReadPreference.PRIMARY,
            read_concern=ReadConcern("majority"),
            write_concern=WriteConcern("majority"),
        )
        leases, workers = database[LEASES], database[WORKERS]
        if not self._indexed:
            leases.create_index([("group", 1), ("owner", 1)], name="lease_group_owner")
            workers.create_index([("group", 1)], name="lease_worker_group")
            workers.create_index([("expires", 1)], name="lease_worker_ttl", expireAfterSeconds=3600)
            self._indexed = True
        return leases, workers

    def _id(self, key: str) -> str:
        return f"{self.group}:{key}"

    def _expiry(self) -> dict[str, Any]:
        return {"$add": [NOW, round(self.lease_seconds * 1000)]}

    def _free_or_mine(self) -> dict[str, Any]:
        return {"$or": [{"$eq": ["$owner", {"$literal": self.me}]}, {"$not": [LIVE]}]}

    def _acquired(self, group: str, key: str) -> list[dict[str, Any]]:
        """The update pipeline that makes this worker the owner; the token moves on only when the owner changes
        (a lease this worker still owns, even expired, was held by nobody else meanwhile)."""
        me = {"$literal": self.me}  # names are values, even one that starts with "$"
        same = {"$eq": ["$owner", me]}
        return [
            {
                "$set": {
                    "group": {"$literal": group},
                    "key": {"$literal": key},
                    "token": {"$cond": [same, "$token", {"$add": [{"$ifNull": ["$token", 0]}, 1]}]},
                    "acquired_at": {"$cond": [same, "$acquired_at", NOW]},
                    "owner": me,
                    "expires": self._expiry(),
                }
            }
        ]

    def _heartbeat(self, workers: Collection[Any]) -> None:
        stage = {
            "group": {"$literal": self.group},
            "worker": {"$literal": self.me},
            "host": {"$literal": socket.gethostname()},
            "pid": os.getpid(),
            "held": len(self._held),
            "started_at": {"$ifNull": ["$started_at", NOW]},
            "expires": self._expiry(),
        }
        workers.update_one({"_id": self._id(self.me)}, [{"$set": stage}], upsert=True)

    def _extend(self, leases: Collection[Any]) -> None:
        """Renew every lease of the group this worker owns (expired ones too: nobody else took them)."""
        leases.update_many({"group": self.group, "owner": self.me}, [{"$set": {"expires": self._expiry()}}])

    def _take(self, leases: Collection[Any], candidates: tuple[str, ...], want: int, existing: set[str]) -> None:
        """Take ``want`` of ``candidates`` (in order), in batches of conditional updates (one round trip each): a
        key another worker took meanwhile fails its filter and the next candidate is tried. A key that never had a
        lease gets its document first (unowned; MongoDB refuses ``$expr`` in an upsert's filter)."""
        start = 0
        while want > 0 and start < len(candidates):
            batch = candidates[start : start + want]
            start += len(batch)
            self._create(leases, self.group, [k for k in batch if k not in existing])
            ops = [
                UpdateOne({"_id": self._id(k), "$expr": self._free_or_mine()}, self._acquired(self.group, k))
                for k in batch
            ]
            want -= leases.bulk_write(ops, ordered=False).modified_count

    def _create(self, leases: Collection[Any], group: str, keys: list[str]) -> None:
        """Insert unowned lease documents for ``keys``; one another worker inserted first is left as it is."""
        if not keys:
            return
        docs = [{"_id": f"{group}:{k}", "group": group, "key": k, "owner": None, "token": 0} for k in keys]
        try:
            leases.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors") or any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise

    def _mine(self, leases: Collection[Any]) -> frozenset[str]:
        query = {"group": self.group, "owner": self.me, "$expr": LIVE}
        return frozenset(d["key"] for d in leases.find(query, {"key": 1}))

    def _settle(self, held: frozenset[str]) -> LeaseChange:
        before, self._held = self._held, held
        return LeaseChange(held=held, gained=held - before, lost=before - held)


def _released() -> list[dict[str, Any]]:
    """The update pipeline that gives a lease back: no owner, expired now (the token stays: the next owner's
    moves it on)."""
    return [{"$set": {"owner": None, "expires": NOW}}]


def lease_book(group: str, **options: Any) -> LeaseBook:
    """A :class:`LeaseBook` on the default database (this thread's connection) with the configured timings
    (``STREAM_LEASE_SECONDS``, ``STREAM_LEASE_RENEW_SECONDS``); ``options`` override them."""
    from django.conf import settings
    from django.db import connection

    timings = {"lease_seconds": settings.STREAM_LEASE_SECONDS, "renew_seconds": settings.STREAM_LEASE_RENEW_SECONDS}
    return LeaseBook(lambda: connection.database, group=group, **(timings | options))
