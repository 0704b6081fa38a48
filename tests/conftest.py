"""Shared fixtures: simulators started in-process on free ports, and the recorded data folder."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from django.test.signals import setting_changed

from exchangesim.config import SimConfig
from exchangesim.server import Simulator, running_in_thread
from tradingsite.devstack import Service, start_mongod, start_redis

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
API_KEY = "simKey123"
API_SECRET = "simSecret456"
CACHE_DB = 1  # the Redis database of Django's cache (throttle counters, backfill dedup keys), as in settings
BROKER_DB = 11  # the Redis database of Celery's broker in tests (tests/markets/test_tasks.py reads it)


def shared_file(relative: str) -> Path:
    """A file from ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"recorded data {path} is absent (../shared/data is not beside this checkout)")
    return path


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    proc: subprocess.Popen,
    log: Path | None = None,
    *,
    every: float = 0.2,
) -> None:
    """Poll ``check()`` until it holds; fail naming ``what`` if ``proc`` exits first or ``timeout`` seconds pass,
    with what the process said (its ``log`` file, else its piped output once it has exited)."""

    def said(tail: bool) -> str:
        if log is not None:
            return log.read_text()[-4000:] if tail else log.read_text()
        return proc.stdout.read() if proc.stdout is not None and proc.poll() is not None else ""

    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            pytest.fail(f"{' '.join(map(str, proc.args[:3]))} exited while waiting for {what}:\n{said(False)}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}:\n{said(True)}")
        time.sleep(every)


def sim_config(**overrides: object) -> SimConfig:
    """A quick simulator: free port, one day of history, keys configured."""
    base: dict[str, object] = {"port": 0, "history_days": 1.0, "api_keys": {API_KEY: API_SECRET}}
    base.update(overrides)
    return SimConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A synthetic BTCUSDT/ETHUSDT simulator in the test's event loop."""
    async with Simulator(sim_config()) as s:
        yield s


@pytest.fixture
def sim_thread() -> Iterator[Simulator]:
    """A simulator on its own loop in a thread, for synchronous clients."""
    with running_in_thread(sim_config()) as s:
        yield s


@pytest.fixture(scope="session", autouse=True)
def _own_dev_stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``manage.py`` run by a test never takes a developer's running ``make run`` stack (its ``.data``) for its
    databases or exchanges: the suite's commands look for one in a folder of their own."""
    before = os.environ.get("DEV_STACK_DIR")
    os.environ["DEV_STACK_DIR"] = str(tmp_path_factory.mktemp("dev-stack-dir"))
    yield
    if before is None:
        os.environ.pop("DEV_STACK_DIR", None)
    else:
        os.environ["DEV_STACK_DIR"] = before


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Service]]:
    """A real mongod (single-node replica set) and redis-server on free ports in a temporary folder,
    once per test session; whatever MONGODB_URI/REDIS_URL the environment has is not used."""
    root = tmp_path_factory.mktemp("devstack")
    mongo = start_mongod(root / "mongo")
    try:
        redis = start_redis(root / "redis")
    except BaseException:
        mongo.stop()
        raise
    try:
        yield {"mongo": mongo, "redis": redis}
    finally:
        redis.stop()
        mongo.stop()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(dev_stack: dict[str, Service]) -> None:
    """Point Django at the session's mongod (and Redis) before pytest-django creates the test database."""
    from django.conf import settings

    settings.DATABASES["default"]["HOST"] = dev_stack["mongo"].uri
    settings.MONGODB_URI = dev_stack["mongo"].uri
    settings.REDIS_URL = dev_stack["redis"].uri
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] = dev_stack["redis"].uri
    settings.CACHES["default"]["LOCATION"] = f"{dev_stack['redis'].uri.rsplit('/', 1)[0]}/{CACHE_DB}"
    setting_changed.send(sender=None, setting="CACHES", value=settings.CACHES, enter=True)  # drops made clients
    # Tasks sent by the code under test (an anonymous history request queues its backfill) go to the test Redis.
    from tradingsite.celery import app

    app.conf.broker_url = f"{dev_stack['redis'].uri.rsplit('/', 1)[0]}/{BROKER_DB}"


@pytest.fixture(scope="session", autouse=True)
def api_throttle_rates() -> Iterator[None]:
    """The suite sends many API requests from one address within a minute: no client is throttled here
    (tests/markets/test_throttle.py puts the configured rates back to test them)."""
    from django.conf import settings
    from rest_framework.settings import api_settings

    configured = settings.REST_FRAMEWORK
    settings.REST_FRAMEWORK = {**configured, "DEFAULT_THROTTLE_RATES": dict.fromkeys(("anon", "user", "staff"), None)}
    api_settings.reload()
    try:
        yield
    finally:
        settings.REST_FRAMEWORK = configured
        api_settings.reload()
