"""Request parameters as Binance validates them: exact codes and messages naming the parameter."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation

from ..symbols import SymbolSpec
from .errors import BAD_SYMBOL, BinanceError, illegal_chars, invalid_param, mandatory

_INT = re.compile(r"[0-9]{1,20}")
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: later times mean "no bound", not an overflow
_DEC = re.compile(r"([0-9]{1,20})(\.[0-9]{1,20})?")
_DEC_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_SYMBOLS_RANGE = r'^\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\]$'


class Params:
    """Typed access to a request's parameters (query string and form body, the query winning)."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data

    def raw(self, name: str) -> str | None:
        v = self.data.get(name)
        return None if v is None or v == "" else v

    def symbol(self, specs: dict[str, SymbolSpec], name: str = "symbol") -> SymbolSpec:
        raw = self.raw(name)
        if raw is None:
            raise mandatory(name)
        spec = specs.get(raw)
        if spec is None:
            raise BinanceError(*BAD_SYMBOL)
        return spec

    def symbols(self, specs: dict[str, SymbolSpec]) -> list[SymbolSpec] | None:
        """The ``symbols=["A","B"]`` JSON array, or None when absent."""
        raw = self.raw("symbols")
        if raw is None:
            return None
        try:
            names = json.loads(raw)
        except ValueError:
            names = None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise illegal_chars("symbols", _SYMBOLS_RANGE)
        out = []
        for n in names:
            if n not in specs:
                raise BinanceError(*BAD_SYMBOL)
            out.append(specs[n])
        return out

    def int(
        self,
        name: str,
        *,
        default: int | None = None,
        lo: int | None = None,
        hi: int | None = None,
        required: bool = False,
    ) -> int | None:
        raw = self.raw(name)
        if raw is None:
            if required:
                raise mandatory(name)
            return default
        if not _INT.fullmatch(raw):
            raise illegal_chars(name)
        value = int(raw)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise invalid_param(name)
        return value

    def time(self, name: str, *, required: bool = False) -> int | None:
        """A time parameter in ms (microsecond values are accepted and converted)."""
        value = self.int(name, required=required)
        if value is not None and value > 10**14:
            value //= 1000
        return None if value is None else min(value, MAX_TIME_MS)

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        raw = self.raw(name)
        if raw is None:
            if required:
                raise mandatory(name)
            return None
        if not _DEC.fullmatch(raw):
            raise illegal_chars(name, _DEC_RANGE)
        try:
            return Decimal(raw)
        except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
            raise illegal_chars(name, _DEC_RANGE) from exc

    def enum(
        self,
        name: str,
        allowed: tuple[str, ...],
        error: tuple[int, str],
        *,
        required: bool = True,
        default: str | None = None,
    ) -> str | None:
        raw = self.raw(name)
        if raw is None:
            if required:
                raise mandatory(name)
            return default
        if raw not in allowed:
            raise BinanceError(*error)
        return raw
