"""The environment is read once and checked: a bad value stops the process naming the variable, its value and
what is expected; `.env` configures every process; the README documents every variable the code reads; compose
passes every one of them to the app services; the README's production `.env` passes `check --deploy`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tradingsite.env import ConfigError, Env, mongodb_database

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "web", "stream", "worker", "beat")
SIM_URLS = {
    "BINANCE_REST_URL": "http://exchangesim:9900",
    "BINANCE_WS_URL": "ws://exchangesim:9900",
    "BINANCE_DATA_URL": "http://exchangesim:9900",
    "COINBASE_REST_URL": "http://exchangesim:9900/coinbase",
    "COINBASE_WS_URL": "ws://exchangesim:9900/coinbase/ws",
    "KRAKEN_REST_URL": "http://exchangesim:9900/kraken",
    "KRAKEN_WS_URL": "ws://exchangesim:9900/kraken/v2",
}


def readme_variables(*, tables: slice = slice(0, 1)) -> set[str]:
    """The variables named in the first column of the README's environment tables: by default the first (the
    application's), ``slice(None)`` for all of them (``make run``'s and compose's own too)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Environment") : text.index("### Production")]
    names: set[str] = set()
    for table in _tables(section)[tables]:
        for line in table:
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def _tables(section: str) -> list[list[str]]:
    tables: list[list[str]] = []
    rows: list[str] = []
    for line in [*section.splitlines(), ""]:
        if line.startswith("| `"):
            rows.append(line)
        elif rows and not line.startswith("|"):
            tables.append(rows)
            rows = []
    return tables


def production_env() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    block = text[text.index("<!-- production-env -->") : text.index("<!-- /production-env -->")]
    lines = [ln for ln in block.splitlines() if "=" in ln and not ln.startswith(("```", "<!--"))]
    return dict(ln.split("=", 1) for ln in lines)


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without anything of ours, so a developer's shell or .env cannot leak in."""
    ours = readme_variables(tables=slice(None))
    base = {k: v for k, v in os.environ.items() if k not in ours}
    return base | {"ENV_FILE": "", "DJANGO_SETTINGS_MODULE": "tradingsite.settings"} | extra


def settings_value(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = f"from django.conf import settings; print(repr(settings.{name}))"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("FEED_STALL_SECONDS", "10s", "FEED_STALL_SECONDS='10s': expected a number of seconds of at least 0.5"),
        ("FEED_STALL_SECONDS", "nan", "FEED_STALL_SECONDS='nan': expected a number of seconds"),
        ("PAPER_CASH", "abc", "PAPER_CASH='abc': expected a decimal number of at least 0"),
        ("PAPER_FEE", "2", "PAPER_FEE='2': expected a decimal number from 0 to 1"),
        ("RISK_MAX_OPEN_POSITIONS", "1.5", "RISK_MAX_OPEN_POSITIONS='1.5': expected a whole number"),
        ("TRADING_MODE", "real", "TRADING_MODE='real': expected one of testnet, live"),
        ("TRADING_EXCHANGES", "binance,nasdaq", "TRADING_EXCHANGES='binance,nasdaq': expected comma-separated"),
        ("TRADING_ENABLED", "maybe", "TRADING_ENABLED='maybe': expected 1/true/yes/on or 0/false/no/off"),
        ("MONGODB_URI", "localhost:27017", "MONGODB_URI='localhost:27017': expected a URL starting mongodb://"),
        ("BINANCE_WS_URL", "https://x", "BINANCE_WS_URL='https://x': expected a URL starting ws:// or wss://"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud': expected one of debug, info"),
        ("DJANGO_HSTS_SECONDS", "-1", "DJANGO_HSTS_SECONDS='-1': expected a whole number of at least 0"),
    ],
)
def test_a_bad_value_stops_manage_py_naming_it(variable: str, value: str, expected: str) -> None:
    """`manage.py check` with one bad variable exits non-zero with one line naming the variable, its value and
    what it expects, and no traceback."""
    run = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=clean_env(**{variable: value}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0
    assert expected in run.stderr
    assert "Traceback" not in run.stderr


def test_every_bad_value_is_reported_at_once() -> None:
    env = Env({"A": "x", "B": "y", "C": " "})
    assert env.number("A", 1.0, unit="seconds") == 1.0
    assert env.integer("B", 2) == 2
    assert env.integer("C", 7) == 7  # blank is the default
    with pytest.raises(ConfigError) as info:
        env.check()
    assert str(info.value).splitlines()[1:] == [
        "  A='x': expected a number of seconds",
        "  B='y': expected a whole number",
    ]


def test_a_secret_value_is_never_repeated() -> None:
    env = Env({"BINANCE_API_SECRET": "topsecret"})
    env.text("BINANCE_API_SECRET", choices=("a", "b"), secret=True)
    with pytest.raises(ConfigError) as info:
        env.check()
    assert "topsecret" not in str(info.value)
    assert "BINANCE_API_SECRET=(hidden)" in str(info.value)


def test_lists_and_flags() -> None:
    env = Env({"L": " Binance , kraken,, ", "F": "Yes", "G": "off"})
    assert env.items("L", choices=("binance", "coinbase", "kraken")) == ("binance", "kraken")
    assert env.flag("F") is True
    assert env.flag("G", True) is False
    assert env.flag("UNSET", True) is True
    env.check()


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("mongodb://host/mydb", "mydb"),
        ("mongodb://a:1,b:2/mydb?replicaSet=rs0", "mydb"),
        ("mongodb://u:p@host:27017/?replicaSet=rs0", ""),
        ("mongodb+srv://cluster.example.net/prod", "prod"),
        ("", ""),
    ],
)
def test_the_database_named_in_the_uri(uri: str, name: str) -> None:
    assert mongodb_database(uri) == name


def test_mongodb_uri_database_is_used_when_mongodb_db_is_unset() -> None:
    uri = "mongodb://127.0.0.1:1/mydb"
    assert settings_value("MONGODB_DB", clean_env(MONGODB_URI=uri)).stdout.strip() == "'mydb'"
    assert settings_value("MONGODB_DB", clean_env(MONGODB_URI=uri, MONGODB_DB="other")).stdout.strip() == "'other'"
    assert settings_value("MONGODB_DB", clean_env()).stdout.strip() == "'tradingsite'"


def test_an_env_file_configures_the_process_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / "prod.env"
    dotenv.write_text("PAPER_CASH=12345\nFEED_STALL_SECONDS=3\n# a comment\n")
    got = settings_value("PAPER_CASH", clean_env(ENV_FILE=str(dotenv)))
    assert got.stdout.strip() == "Decimal('12345')", got.stderr
    got = settings_value("PAPER_CASH", clean_env(ENV_FILE=str(dotenv), PAPER_CASH="5"))
    assert got.stdout.strip() == "Decimal('5')"
    dotenv.write_text("FEED_STALL_SECONDS=soon\n")
    got = settings_value("FEED_STALL_SECONDS", clean_env(ENV_FILE=str(dotenv)))
    assert got.returncode != 0
    assert "FEED_STALL_SECONDS='soon'" in got.stderr
    got = settings_value("PAPER_CASH", clean_env(ENV_FILE=str(tmp_path / "missing.env")))
    assert got.returncode != 0
    assert "ENV_FILE=" in got.stderr


def test_every_variable_the_settings_read_is_in_the_readme() -> None:
    from tradingsite import settings

    documented = readme_variables(tables=slice(None))
    read = set(settings._env.read)
    assert read - documented == set(), "read by settings.py but missing from the README's table"
    procfile = set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "Procfile").read_text()))
    assert procfile - documented == set(), "read by the Procfile but missing from the README's table"


def test_every_readme_variable_reaches_every_app_service_in_compose() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name in APP_SERVICES:
        service = compose["services"][name]
        given = set(service.get("environment") or {})
        assert service.get("env_file") or readme_variables() - given == set(), name


def test_the_sim_override_points_every_exchange_url_at_the_simulator() -> None:
    override = yaml.safe_load((ROOT / "docker-compose.sim.yml").read_text())
    for name in APP_SERVICES:
        env = override["services"][name]["environment"]
        assert {k: env[k] for k in SIM_URLS} == SIM_URLS
        assert env["MARKET_SIMULATED"] == "1"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed here")
def test_docker_compose_config_accepts_both_files() -> None:
    env = clean_env(DJANGO_SECRET_KEY="x" * 60)
    for files in (["-f", "docker-compose.yml"], ["-f", "docker-compose.yml", "-f", "docker-compose.sim.yml"]):
        run = subprocess.run(
            ["docker-compose", *files, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        assert run.returncode == 0, run.stderr


def test_the_stream_service_scales_to_several_workers() -> None:
    """``docker compose up --scale stream=3``: replicas need no name of their own and publish no port, and each is a
    leased worker (no ``--symbols``, no ``--no-leases``) that gives its leases back within its stop grace period."""
    for files in (["docker-compose.yml"], ["docker-compose.yml", "docker-compose.sim.yml"]):
        stream: dict[str, object] = {}
        for name in files:
            stream |= yaml.safe_load((ROOT / name).read_text())["services"].get("stream", {})
        assert "container_name" not in stream, files
        assert "ports" not in stream, files
        command = " ".join(stream["command"])  # type: ignore[arg-type]
        assert "manage.py stream --exchange" in command
        assert "--symbols" not in command
        assert "--no-leases" not in command
        assert stream["stop_grace_period"] == "30s"


def test_check_deploy_is_clean_with_the_readmes_production_env(tmp_path: Path) -> None:
    dotenv = tmp_path / "production.env"
    dotenv.write_text("".join(f"{k}={v}\n" for k, v in production_env().items()))
    run = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean_env(ENV_FILE=str(dotenv)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "System check identified no issues" in run.stdout


def test_every_long_running_service_has_a_healthcheck_that_means_something() -> None:
    """web asks /readyz (MongoDB and Redis), stream runs `feed check`, worker and beat have their own."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    checks = {name: " ".join(services[name]["healthcheck"]["test"]) for name in ("web", "stream", "worker", "beat")}
    assert "/readyz" in checks["web"]
    assert "manage.py feed check" in checks["stream"]
    assert "inspect ping" in checks["worker"]
    assert "celerybeat-schedule" in checks["beat"]
