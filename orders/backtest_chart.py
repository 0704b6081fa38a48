"""The backtest's equity-curve picture: strategy equity vs buy-and-hold, with the trades marked — entries, exits by
reason (take-profit, stop-loss, SELL signal) and the signals the risk check rejected.

Drawn on matplotlib's Agg canvas through its object API (``Figure`` + ``FigureCanvasAgg``), never pyplot: no
global backend to select, whatever ``MPLBACKEND`` says, no window, no X server, nothing left open between runs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .backtest import BacktestResult, ExitReason

EXIT_STYLE = (
    (ExitReason.TAKE_PROFIT, "take-profit", "#2ca02c"),
    (ExitReason.STOP_LOSS, "stop-loss", "#d62728"),
    (ExitReason.SIGNAL, "SELL signal", "#ff7f0e"),
)


def equity_png(result: BacktestResult, path: Path, *, title: str) -> Path:
    """Write the equity curve of ``result`` to ``path`` (PNG; parent folders created); returns the path."""
    if not result.curve:
        raise ValueError("no candles to draw")
    times = [p.time for p in result.curve]
    equity_at = {p.time: float(p.equity) for p in result.curve}

    def y(at: list[datetime]) -> list[float]:
        return [equity_at[t] for t in at]

    fig = Figure(figsize=(12, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(times, [float(p.equity) for p in result.curve], color="#1f77b4", lw=1.3, label="strategy")
    ax.plot(times, [float(p.hold) for p in result.curve], color="#7f7f7f", lw=1.0, ls="--", label="buy & hold")
    entries = [t.entry_time for t in result.trades]
    ax.scatter(
        entries,
        y(entries),
        marker="^",
        color="#1f77b4",
        edgecolors="black",
        linewidths=0.5,
        s=44,
        zorder=3,
        label=f"entry ({len(entries)})",
    )
    for reason, label, color in EXIT_STYLE:
        at = [t.exit_time for t in result.trades if t.exit_reason is reason and t.exit_time is not None]
        ax.scatter(
            at,
            y(at),
            marker="v",
            color=color,
            edgecolors="black",
            linewidths=0.5,
            s=44,
            zorder=3,
            label=f"{label} ({len(at)})",
        )
    rejected = [c.time for c in result.checks if not c.approved]
    ax.scatter(
        rejected,
        y(rejected),
        marker="o",
        facecolors="none",
        edgecolors="#999999",
        s=18,
        zorder=2,
        label=f"signal rejected ({len(rejected)})",
    )
    ax.axhline(float(result.cash), color="#bbbbbb", lw=0.8)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel("equity (quote asset)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
