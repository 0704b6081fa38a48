"""The direction of imports (ARCHITECTURE §3, issue 14): every import in the project's own packages runs down.

    composition: live/, tradingsite's urls, asgi, probes, celery, run   ← the only layer that sees all
        ↓
    orders  →  signals  →  markets  →  markets/exchanges               exchangesim: imports none of them

The test reads every module's source (``ast``, so imports inside functions and ``TYPE_CHECKING`` blocks count
too) and fails naming each import that runs against the direction.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("exchangesim", "markets", "signals", "orders", "live", "tradingsite")
# tradingsite's leaf modules: the settings and the process plumbing every app may use; they import no app. The
# package itself and its other modules (urls, asgi, probes, celery, run) are the top: they compose everything.
TRADINGSITE_LEAVES = {"env", "params", "ports", "running_stack", "devstack", "settings"}
# What each layer may import among the project's packages (besides itself).
ALLOWED: dict[str, set[str]] = {
    "exchangesim": set(),
    "markets.exchanges": {"markets.types", "markets.intervals", "markets.metrics"},
    "markets": {"tradingsite.leaf"},
    "signals": {"markets", "tradingsite.leaf"},
    "orders": {"signals", "markets", "tradingsite.leaf"},
    "tradingsite.leaf": set(),
    "live": {"markets", "signals", "orders", "tradingsite.leaf", "tradingsite"},
    "tradingsite": {"markets", "signals", "orders", "live", "tradingsite.leaf", "exchangesim"},  # run.py starts the sim
}


def layer(module: str) -> str | None:
    """The layer a dotted module name belongs to, or None for anything outside the project's packages."""
    parts = module.split(".")
    top = parts[0]
    if top not in APPS:
        return None
    if top == "markets" and len(parts) > 1 and parts[1] == "exchanges":
        return "markets.exchanges"
    if top == "tradingsite" and len(parts) > 1 and parts[1] in TRADINGSITE_LEAVES:
        return "tradingsite.leaf"
    return top


def may_import(importer: str, imported: str) -> bool:
    """Whether module ``importer`` may import module ``imported``."""
    src, dst = layer(importer), layer(imported)
    if src is None or dst is None or src == dst:
        return True
    if src == "markets.exchanges":  # inside markets, the adapters use only the pure records and helpers
        if dst == "markets":
            return any(imported == a or imported.startswith(a + ".") for a in ALLOWED[src])
        return dst == "tradingsite.leaf"
    if dst == "markets.exchanges":
        dst = "markets"
    return dst == src or dst in ALLOWED[src]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str, module: str, *, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, relative ones resolved against ``module``."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or node.level:  # `from . import x` may import submodule x
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}" if target else alias.name
            else:
                yield node.lineno, target


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Each import in ``source`` (the text of ``module``) that runs against the direction, as 'module:line → name'."""
    return [
        f"{module}:{line} imports {name}"
        for line, name in imports(source, module, is_package=is_package)
        if not may_import(module, name)
    ]


def project_modules() -> Iterator[Path]:
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts and "__pycache__" not in path.parts:
                yield path


def test_every_import_runs_down_the_layers() -> None:
    """No module imports a layer above its own: markets no other app, signals only markets, orders only signals
    and markets, exchangesim none; only the composition (live/, tradingsite's top modules) sees all."""
    found = []
    for path in project_modules():
        found += violations(path.read_text(), module_name(path), is_package=path.name == "__init__.py")
    assert not found, "imports against the direction of the layers:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("markets.services", "from orders.models import Order\n"),
        ("markets.services", "def f():\n    import signals.rules\n"),
        ("markets.stream.storage", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from orders import x\n"),
        ("markets.selectors", "from live.views import home\n"),
        ("markets.exchanges.kraken.rest", "from ...models import Tick\n"),
        ("signals.services", "from orders.risk import RiskParams\n"),
        ("orders.trader", "from live.wiring import stream_listeners\n"),
        ("exchangesim.server", "from markets.exchanges.base import TradeTick\n"),
        ("tradingsite.env", "from markets import metrics\n"),
    ],
)
def test_an_import_against_the_direction_is_caught(module: str, source: str) -> None:
    """The checker names an upward import wherever it hides (a function body, TYPE_CHECKING, a relative path)."""
    assert violations(source, module) == [f"{module}:{source.count(chr(10))} imports " + _imported(source, module)]


def _imported(source: str, module: str) -> str:
    return [name for _, name in imports(source, module, is_package=False) if layer(name)][-1]


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("orders.trader", "from signals.rules import Decision\nfrom markets.types import TradeTick\n"),
        ("signals.services", "from markets.services import candles_upsert\nfrom tradingsite.params import x\n"),
        ("markets.exchanges.binance.rest", "from ..base import Source\nfrom ...types import TradeTick\n"),
        ("live.wiring", "from orders.trader import trader_for\nfrom markets.stream import TradeStream\n"),
        ("markets.stream.storage", "from ..models import Tick\nfrom .candles import LiveCandles\n"),
    ],
)
def test_imports_down_the_layers_pass(module: str, source: str) -> None:
    """Imports that follow the direction are not reported."""
    assert violations(source, module) == []


MAX_LINES = 450


def test_no_module_is_over_450_lines() -> None:
    """Modules stay small enough to have one reason to change (STYLE.md §5); migrations are generated."""
    folders = [*APPS, "tests", "bench"]
    long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for folder in folders
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "migrations" not in path.parts and (n := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(long)


def test_exchange_differences_live_in_the_registry() -> None:
    """No ``exchange == "..."`` branch outside the exchange registry: differences are declared there as data."""
    registry = ROOT / "markets" / "exchanges" / "registry.py"
    found = [
        f"{path.relative_to(ROOT)}:{i}"
        for app in ("markets", "orders", "signals", "live")
        for path in sorted((ROOT / app).rglob("*.py"))
        if path != registry
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if 'exchange == "' in line or 'exchange != "' in line
    ]
    assert not found, "exchange branches outside markets/exchanges/registry.py:\n" + "\n".join(found)
