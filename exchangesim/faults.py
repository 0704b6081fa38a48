"""Fault state shared by the venues: REST faults, socket drops and stalls, corrupted frames."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RestFault:
    """Answer the next ``count`` requests under ``path_prefix`` with ``status`` and/or a delay."""

    venue: str
    path_prefix: str
    status: int | None
    count: int
    retry_after: int | None = None
    delay_ms: int = 0


@dataclass(slots=True)
class Faults:
    """Everything the control API has asked to break, and counts of what actually broke."""

    rest: list[RestFault] = field(default_factory=list)
    reject_until_ms: dict[str, int] = field(default_factory=dict)  # venue -> refuse new sockets until
    stall_until_ms: dict[str, int] = field(default_factory=dict)  # venue -> send nothing until
    corrupt: dict[str, list[str]] = field(default_factory=dict)  # venue -> pending corruption kinds
    injected: dict[str, int] = field(default_factory=dict)  # what was injected, for /_sim/status

    def take_rest(self, venue: str, path: str) -> RestFault | None:
        """The fault to apply to this request, consuming one of its count."""
        for f in self.rest:
            if f.venue == venue and path.startswith(f.path_prefix) and f.count > 0:
                f.count -= 1
                self.count(f"rest_{f.status or 'delay'}")
                if f.count == 0:
                    self.rest.remove(f)
                return f
        return None

    def take_corruption(self, venue: str) -> str | None:
        pending = self.corrupt.get(venue)
        if not pending:
            return None
        kind = pending.pop(0)
        self.count(f"ws_{kind}")
        return kind

    def count(self, what: str) -> None:
        self.injected[what] = self.injected.get(what, 0) + 1

    def clear(self) -> None:
        self.rest.clear()
        self.reject_until_ms.clear()
        self.stall_until_ms.clear()
        self.corrupt.clear()
