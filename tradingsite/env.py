"""The environment, read once and checked: a small typed reader that collects every bad value.

``settings.py`` reads each variable through one :class:`Env` and calls :meth:`Env.check` at the end, so a
process with a bad configuration stops before it does anything, with one line per bad variable naming it,
the value it got and what it expects (a secret's value is never repeated). No Django import: the reader is
plain code over a mapping, tested without settings.

An optional ``.env`` file (``KEY=value`` lines, parsed by python-dotenv) configures ``make run``,
``manage.py`` and the processes alike; a variable already in the environment wins over the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

T = TypeVar("T")

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off", ""})


class ConfigError(ValueError):
    """One or more environment variables hold values the project cannot use."""


class _Bad(ValueError):
    """A conversion's refusal whose message is worth showing."""


def load_env_file(path: Path) -> dict[str, str]:
    """Put the variables of ``path`` (a ``.env`` file) into ``os.environ`` where they are not set already.

    ``ENV_FILE`` names another file; ``ENV_FILE=`` (empty) reads none. Returns what was taken from the file.
    """
    named = os.environ.get("ENV_FILE")
    if named is not None:
        if not named.strip():
            return {}
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"ENV_FILE={named!r}: expected the path of a readable .env file")
    if not path.is_file():
        return {}
    taken = {k: v for k, v in dotenv_values(path).items() if v is not None and k not in os.environ}
    os.environ.update(taken)
    return taken


class Env:
    """Typed reads of one environment mapping; every failure is remembered and reported by :meth:`check`."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.errors: list[str] = []
        self.read: list[str] = []

    def _get(self, name: str, default: T, convert: Callable[[str], T], expected: str, *, secret: bool = False) -> T:
        self.read.append(name)
        raw = self._environ.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            return convert(raw.strip())
        except (ValueError, ArithmeticError) as exc:
            shown = "(hidden)" if secret else repr(raw)
            why = f" ({exc})" if isinstance(exc, _Bad) else ""
            self.errors.append(f"{name}={shown}: expected {expected}{why}")
            return default

    def text(self, name: str, default: str = "", *, choices: Iterable[str] | None = None, secret: bool = False) -> str:
        """A string; with ``choices``, one of them (compared in lower case)."""
        if choices is None:
            return self._get(name, default, lambda raw: raw, "a string", secret=secret)
        allowed = tuple(choices)

        def one_of(raw: str) -> str:
            if raw.lower() not in allowed:
                raise ValueError("")
            return raw.lower()

        return self._get(name, default, one_of, "one of " + ", ".join(allowed), secret=secret)

    def flag(self, name: str, default: bool = False) -> bool:
        """``1/true/yes/on`` or ``0/false/no/off``."""

        def truth(raw: str) -> bool:
            if raw.lower() in TRUE:
                return True
            if raw.lower() in FALSE:
                return False
            raise ValueError("")

        return self._get(name, default, truth, "1/true/yes/on or 0/false/no/off")

    def integer(self, name: str, default: int, *, lo: int | None = None, hi: int | None = None) -> int:
        """A whole number within ``[lo, hi]``."""
        return self._get(name, default, lambda raw: _within(int(raw), lo, hi), _range("a whole number", lo, hi))

    def number(self, name: str, default: float, *, lo: float | None = None, unit: str = "") -> float:
        """A number (``unit`` says of what, e.g. seconds), at least ``lo``."""
        what = f"a number of {unit}" if unit else "a number"
        return self._get(name, default, lambda raw: _within(_finite(float(raw)), lo, None), _range(what, lo, None))

    def decimal(self, name: str, default: str, *, lo: str | None = None, hi: str | None = None) -> str:
        """A decimal within ``[lo, hi]``, kept as its text (the readers downstream take strings); ``""`` stays
        empty, meaning "off" where the default is empty."""

        def number(raw: str) -> str:
            try:
                value = Decimal(raw)
            except InvalidOperation:
                raise ValueError("") from None
            if not value.is_finite():
                raise ValueError("")
            _within(value, None if lo is None else Decimal(lo), None if hi is None else Decimal(hi))
            return raw

        return self._get(name, default, number, _range("a decimal number", lo, hi))

    def items(
        self, name: str, default: tuple[str, ...] = (), *, choices: Iterable[str] | None = None
    ) -> tuple[str, ...]:
        """Comma-separated values, blanks dropped; with ``choices``, each one of them."""
        allowed = None if choices is None else tuple(choices)

        def split(raw: str) -> tuple[str, ...]:
            values = tuple(v.strip() for v in raw.split(",") if v.strip())
            if allowed is not None:
                bad = [v for v in values if v.lower() not in allowed]
                if bad:
                    raise _Bad(f"not {', '.join(bad)}")
                values = tuple(v.lower() for v in values)
            return values

        expected = "comma-separated values" + ("" if allowed is None else " among " + ", ".join(allowed))
        return self._get(name, default, split, expected)

    def matching(self, name: str, default: str, pattern: str, expected: str) -> str:
        """A string that matches the regular expression ``pattern`` whole (``expected`` says what that is)."""

        def match(raw: str) -> str:
            if re.fullmatch(pattern, raw) is None:
                raise ValueError("")
            return raw

        return self._get(name, default, match, expected)

    def url(self, name: str, default: str, *, schemes: Iterable[str]) -> str:
        """A URL with one of ``schemes`` and a host."""
        allowed = tuple(schemes)

        def address(raw: str) -> str:
            parts = urlsplit(raw)
            if parts.scheme not in allowed or not parts.netloc:
                raise ValueError("")
            return raw

        return self._get(name, default, address, f"a URL starting {' or '.join(s + '://' for s in allowed)}")

    def check(self) -> None:
        """Raise :class:`ConfigError` listing every bad variable, if any."""
        if self.errors:
            lines = "\n".join(f"  {e}" for e in self.errors)
            raise ConfigError(f"bad configuration in the environment (or .env):\n{lines}")


def _finite(value: float) -> float:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("")
    return value


def _within(value: T, lo: object, hi: object) -> T:
    if (lo is not None and value < lo) or (hi is not None and value > hi):  # type: ignore[operator]
        raise ValueError("")
    return value


def _range(what: str, lo: object, hi: object) -> str:
    if lo is not None and hi is not None:
        return f"{what} from {lo} to {hi}"
    if lo is not None:
        return f"{what} of at least {lo}"
    if hi is not None:
        return f"{what} of at most {hi}"
    return what


def mongodb_database(uri: str) -> str:
    """The database named in a MongoDB connection string's path (``mongodb://host/mydb`` → ``mydb``), or ``""``."""
    path = urlsplit(uri).path.lstrip("/")
    return path.split("/", 1)[0]


def redis_database(url: str, db: int) -> str:
    """``url`` with its database number replaced by ``db`` (the cache keeps out of the broker's and channels')."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))
