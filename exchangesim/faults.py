"""Fault state shared by the venues, each keyed by venue name: REST faults, socket drops and stalls,
corrupted frames, and REST history a venue has lost (keyed by tape key)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class RestFault:
    """Answer the next ``count`` requests under ``path_prefix`` (of ``method`` only, when given) with ``status``
    and/or a delay."""

    venue: str
    path_prefix: str
    status: int | None
    count: int
    retry_after: int | None = None
    delay_ms: int = 0
    method: str | None = None  # GET, POST, DELETE, ...: None matches every method


@dataclass(slots=True)
class Faults:
    """Everything the control API has asked to break, and counts of what actually broke."""

    rest: list[RestFault] = field(default_factory=list)
    reject_until_ms: dict[str, int] = field(default_factory=dict)  # venue -> refuse new sockets until
    stall_until_ms: dict[str, int] = field(default_factory=dict)  # venue -> send nothing until
    corrupt: dict[str, list[str]] = field(default_factory=dict)  # venue -> pending corruption kinds
    forgotten: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # tape key -> lost time ranges
    injected: dict[str, int] = field(default_factory=dict)  # what was injected, for /_sim/status

    def take_rest(self, venue: str, *paths: str, method: str | None = None) -> RestFault | None:
        """The fault to apply to this request (``method`` is its HTTP method), consuming one of its count. A venue
        mounted under a prefix passes the path both with and without it, so either form of ``path_prefix``
        matches."""
        for f in self.rest:
            if (
                f.venue == venue
                and any(p.startswith(f.path_prefix) for p in paths)
                and f.method in (None, method)
                and f.count > 0
            ):
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
        self.forgotten.clear()

    def corrupt_frames(self, venue: str, frames: list[str]) -> list[str]:
        """``frames`` with the venue's pending corruptions applied: a frame cut in half, sent twice, or swapped
        with the next one (a reorder with nothing after it waits for the next batch)."""
        if not self.corrupt.get(venue) or not frames:
            return frames
        out: list[str] = []
        i = 0
        while i < len(frames):
            kind = self.take_corruption(venue)
            f = frames[i]
            if kind is None:
                out.extend(frames[i:])
                break
            if kind == "malformed":
                out.append(f[: len(f) // 2])
            elif kind == "duplicate":
                out.extend([f, f])
            elif kind == "reorder" and i + 1 < len(frames):
                out.extend([frames[i + 1], f])
                i += 1
            else:
                self.corrupt.setdefault(venue, []).insert(0, kind)
                self.injected["ws_reorder"] -= 1
                out.append(f)
            i += 1
        return out
