"""The backtest's equity-curve picture: strategy equity vs buy-and-hold, with the BUY/SELL signals marked.

Drawn on matplotlib's Agg canvas through its object API (``Figure`` + ``FigureCanvasAgg``), never pyplot: no
global backend to select, whatever ``MPLBACKEND`` says, no window, no X server, nothing left open between runs.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .backtest import BacktestResult
from .rules import Action


def equity_png(result: BacktestResult, path: Path, *, title: str) -> Path:
    """Write the equity curve of ``result`` to ``path`` (PNG; parent folders created); returns the path."""
    if not result.curve:
        raise ValueError("no candles to draw")
    times = [p.time for p in result.curve]
    equity_at = {p.time: float(p.equity) for p in result.curve}
    fig = Figure(figsize=(12, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(times, [float(p.equity) for p in result.curve], color="#1f77b4", lw=1.3, label="strategy")
    ax.plot(times, [float(p.hold) for p in result.curve], color="#7f7f7f", lw=1.0, ls="--", label="buy & hold")
    for action, marker, color in ((Action.BUY, "^", "#2ca02c"), (Action.SELL, "v", "#d62728")):
        at = [t for t, a, _ in result.markers if a is action]
        ax.scatter(at, [equity_at[t] for t in at], marker=marker, color=color, s=36, zorder=3,
                   label=f"{action} ({len(at)})")
    ax.axhline(float(result.cash), color="#bbbbbb", lw=0.8)
    ax.set_title(title)
    ax.set_ylabel("equity (quote asset)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
