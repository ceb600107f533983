"""`python -m bench sustain`: the highest rate the pipeline sustains with bounded backlog and p99 <= 1 s.

    python -m bench sustain [--window 60] [--start-rate 2000] [--max-rate 100000] [--max-runs 6]

Each trial is a whole `bench pipeline` run (fresh broker, job and tail) at one rate for `--window`
seconds. A rate passes when nothing is lost, the pipeline drains, the alerts query's backlog does not
grow over the window's second half (bench.pipeline.backlog_figures) and alert p99 is <= `--p99-ms`.
The search doubles the rate while trials pass, then bisects between the last pass and the first
failure. The issue defines "sustained" over 5 minutes (`--window 300`); the default is 60 s so that a
search finishes in about 15 minutes on a 2-core machine, so a 60 s result is an upper bound.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from bench import machine
from bench.pipeline import Options, add_pipeline_options, progress, run, save


def verdict(result: dict[str, Any], p99_ms: float) -> tuple[bool, list[str]]:
    """Whether a trial passed, and why not."""
    reasons = []
    if result["lost"]:
        reasons.append(f"lost {result['lost']}")
    if not result["drained"]:
        reasons.append("did not drain")
    if result["backlog"]["bounded"] is False:
        reasons.append(f"backlog grew {result['backlog']['slope_per_s']}/s")
    p99 = result["latency"]["flagged"]["p99_ms"]
    if p99 is None or p99 > p99_ms:
        reasons.append(f"p99 {p99} ms")
    return not reasons, reasons


def trial_summary(result: dict[str, Any], passed: bool, reasons: list[str]) -> dict[str, Any]:
    """The figures of one trial worth keeping."""
    return {
        "rate": result["offered_rate"],
        "passed": passed,
        "why_not": reasons,
        "ingest_rate": result["achieved_ingest_rate"],
        "latency_ms": result["latency"]["flagged"],
        "backlog": result["backlog"],
        "lost": result["lost"],
        "spark_phases_ms": result["spark_phases_ms"],
        "processes": result["processes"],
        "load_at_start": result["machine"]["load_at_start"],
        "load_at_end": result["load_at_end"],
    }


def main(argv: list[str] | None = None) -> int:
    """Search, print the result as JSON and save it."""

    parser = argparse.ArgumentParser(prog="python -m bench sustain", description=__doc__.splitlines()[0])
    add_pipeline_options(parser)
    parser.add_argument(
        "--window", type=float, default=60.0, help="seconds per trial (issue: 300; default %(default)s)"
    )
    parser.add_argument(
        "--start-rate", type=float, default=2_000.0, help="first rate tried (default %(default)s)"
    )
    parser.add_argument(
        "--max-rate", type=float, default=100_000.0, help="highest rate tried (default %(default)s)"
    )
    parser.add_argument("--max-runs", type=int, default=6, help="trials at most (default %(default)s)")
    parser.add_argument("--p99-ms", type=float, default=1000.0, help="alert p99 bound (default %(default)s)")
    args = parser.parse_args(argv)
    info = machine.machine()
    trials: list[dict[str, Any]] = []
    best: float | None = None
    failed: float | None = None
    rate = args.start_rate
    for _ in range(args.max_runs):
        progress(f"sustain: trying {rate:,.0f} tx/s for {args.window:g} s")
        result = run(
            Options(
                rate=rate,
                duration=args.window,
                mode=args.mode,
                drain_timeout=args.drain_timeout,
                parquet_trigger=args.parquet_trigger,
                floor_seconds=0,
                max_offsets_per_trigger=args.max_offsets_per_trigger,
                spark_args=tuple(args.spark_arg),
                tail_args=tuple(args.tail_arg),
            )
        )
        passed, reasons = verdict(result, args.p99_ms)
        trials.append(trial_summary(result, passed, reasons))
        progress(f"sustain: {rate:,.0f} tx/s {'passed' if passed else 'failed: ' + ', '.join(reasons)}")
        if passed:
            best = rate
        else:
            failed = rate
        if failed is None:
            if rate >= args.max_rate:
                break
            rate = min(rate * 2, args.max_rate)
        else:
            low = best if best is not None else 0.0
            if failed - low <= max(500.0, 0.1 * failed):
                break  # close enough for a noisy shared machine
            rate = round((low + failed) / 2, -2)
    summary = {
        "kind": "sustain",
        "machine": info,
        "mode": args.mode,
        "window_s": args.window,
        "p99_bound_ms": args.p99_ms,
        "sustained_rate": best,
        "first_failed_rate": failed,
        "trials": trials,
        "spark_args": args.spark_arg,
        "tail_args": args.tail_arg,
        "load_at_end": machine.load(),
    }
    progress(f"saved {save(summary, 'sustain')}")
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
