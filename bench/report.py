"""`python -m bench report`: latency percentiles against offered rate, from the saved pipeline results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.pipeline import results


def one_line(result: dict[str, Any]) -> str:
    """A run in one line: rate, ingest, latency, loss, JVM CPU per batch, and the load it ran under."""
    lat = result["latency"]["flagged"]
    load = result["machine"]["load_at_start"][0]
    cpu = ""
    if per_batch := result.get("jvm_cpu_ms_per_batch"):
        floor = result.get("reference_floor", {}).get("jvm_cpu_ms_per_batch")
        cpu = f"JVM {per_batch} ms CPU a batch" + (f" (floor {floor})" if floor else "") + "; "
    return (
        f"{result['mode']} offered {result['offered_rate']:,.0f} tx/s, ingested "
        f"{result['achieved_ingest_rate']:,.0f}/s, Spark {result['spark']['alerts']['rows_per_s_wall']}/s; "
        f"latency p50 {lat['p50_ms']} ms p99 {lat['p99_ms']} ms max {lat['max_ms']} ms "
        f"({lat['count']:,} flagged); lost {result['lost']}, duplicates {result['duplicates']}; "
        f"{cpu}load {load}"
    )


def variant(result: dict[str, Any]) -> str:
    """The mode plus any extra flags the run used, e.g. `microbatch alert-lines`."""
    flags = [f.lstrip("-") for f in (*result.get("spark_args", ()), *result.get("tail_args", ()))]
    return " ".join([result["mode"], *flags])


def main(argv: list[str] | None = None) -> int:
    """Print a table of every saved run and a chart of p50/p95/p99 against offered rate per mode."""
    import plotext as plt

    parser = argparse.ArgumentParser(prog="python -m bench report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--results", type=Path, default=None, help="folder of results (default bench/results)"
    )
    parser.add_argument("--mode", default=None, help="only this mode")
    args = parser.parse_args(argv)
    runs = [(p, r) for p, r in results(args.results) if args.mode in (None, r.get("mode"))]
    if not runs:
        print("no pipeline results yet: run `python -m bench pipeline --rate N`", file=sys.stderr)
        return 1
    for path, result in runs:
        print(f"{path.name}: {one_line(result)}")
    plt.clear_figure()
    plt.plotsize(100, 28)
    plt.theme("clear")
    for name in sorted({variant(r) for _, r in runs}):
        # The latest run per rate: reruns replace older ones, so the chart shows the current state.
        latest = {r["offered_rate"]: r for _, r in runs if variant(r) == name}
        rates = sorted(latest)
        for q in ("p50", "p99"):
            plt.plot(
                rates,
                [latest[x]["latency"]["flagged"][f"{q}_ms"] or 0 for x in rates],
                label=f"{name} {q}",
                marker="dot",
            )
    plt.hline(1000)
    plt.title("alert latency (ms, ts -> received by the tail) vs offered tx/s; the line: 1 s")
    plt.xlabel("offered tx/s")
    plt.ylabel("ms (log)")
    plt.yscale("log")
    chart = plt.build()
    # No colour codes in a file or a pipe.
    print(chart if sys.stdout.isatty() else plt.uncolorize(chart))
    return 0


if __name__ == "__main__":
    sys.exit(main())
