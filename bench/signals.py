"""Time to evaluate one closed candle: TA-Lib indicators over the window plus the ta-vote rules.

Ten symbols, each an :class:`signals.evaluator.Evaluator` warmed with ``--warm`` candles of a seeded random
walk (a full default window of 1,000), then fed ``--candles`` more closed candles round-robin, as a stream
process sees them close. Each ``feed`` (the indicators' batch pass and the decision) is timed on its own;
printed: p50, p99 and max per candle, split into the indicators alone and the whole evaluation, against
the 1 ms per symbol target, and what one candle close of all ten symbols costs.

    .venv/bin/python bench/signals.py [--symbols 10] [--warm 1200] [--candles 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_MS = 1.0


def pct(xs: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``xs``, nearest rank."""
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--symbols", type=int, default=10)
    p.add_argument("--warm", type=int, default=1200, help="stored candles each symbol is warmed with")
    p.add_argument("--candles", type=int, default=2000, help="candles fed per symbol and timed")
    args = p.parse_args()

    import talib

    from signals.evaluator import Evaluator
    from tests.signals.walks import random_walk

    symbols = [f"SYM{k}USDT" for k in range(args.symbols)]
    series = {s: random_walk(args.warm + args.candles, seed=k, symbol=s) for k, s in enumerate(symbols)}
    evaluators = {s: Evaluator("binance", s, "1m") for s in symbols}
    for s, ev in evaluators.items():
        ev.warm(series[s][: args.warm])
    whole: list[float] = []
    rounds: list[float] = []
    indicators: list[float] = []
    signals = 0
    for i in range(args.warm, args.warm + args.candles):
        r0 = time.perf_counter()
        for s, ev in evaluators.items():
            t0 = time.perf_counter()
            (decision,) = ev.feed(series[s][i])
            whole.append(time.perf_counter() - t0)
            signals += decision.action != "HOLD"
        rounds.append(time.perf_counter() - r0)
        window = evaluators[symbols[i % len(symbols)]].indicators
        t0 = time.perf_counter()
        window.latest()  # the newest candle's reading again: the indicators alone
        indicators.append(time.perf_counter() - t0)

    print(
        f"TA-Lib {talib.__version__}, {len(symbols)} symbols, window {evaluators[symbols[0]].indicators.window} "
        f"candles, {args.candles:,} closed candles per symbol timed ({len(whole):,} evaluations, "
        f"{signals} signals)"
    )
    print(f"{'per candle, one symbol':<34} {'p50':>9} {'p99':>9} {'max':>9}")
    for name, xs in (("indicators (TA-Lib batch pass)", indicators), ("evaluate (indicators + rules)", whole)):
        print(f"{name:<34} {pct(xs, 0.5) * 1e6:>7.1f}µs {pct(xs, 0.99) * 1e6:>7.1f}µs {max(xs) * 1e6:>7.1f}µs")
    print(
        f"{f'one close of all {len(symbols)} symbols':<34} {pct(rounds, 0.5) * 1e6:>7.1f}µs "
        f"{pct(rounds, 0.99) * 1e6:>7.1f}µs {max(rounds) * 1e6:>7.1f}µs"
    )
    p99 = pct(whole, 0.99) * 1e3
    print(
        f"p99 per symbol {p99:.3f} ms against the {TARGET_MS:g} ms target: "
        f"{'met' if p99 < TARGET_MS else 'MISSED'} ({TARGET_MS / p99:.0f}× headroom); "
        f"mean {statistics.fmean(whole) * 1e6:.1f}µs"
    )


if __name__ == "__main__":
    main()
