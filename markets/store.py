"""The pymongo collection behind a model: the one way code reaches MongoDB around the ORM.

Raw access is for what the backend does not do: idempotent bulk ingest (no ``ignore_conflicts``), upserts, and
reads that must restate a partial index's ``$type`` filter to use it. Whatever is written through it sends ids as
``bson.Int64`` (:mod:`markets.documents` builds such documents): a plain int below 2**31 is stored as BSON ``int``
and escapes the backend's unique indexes, which are partial on type ``long`` (ARCHITECTURE §5).
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Model
from pymongo.collection import Collection


def collection(model: type[Model]) -> Collection[Any]:
    """The pymongo collection of ``model``'s table on the default database (this thread's connection)."""
    return connection.database[model._meta.db_table]
