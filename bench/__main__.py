"""`python -m bench COMMAND`: whole-pipeline benchmarks and the reference tools they are compared with.

pipeline  one run of the real pipeline at a rate (latency, loss, throughput, CPU and memory)
sustain   the highest rate that keeps the backlog bounded and alert p99 <= 1 s
report    latency percentiles against offered rate, from bench/results (plotext)
producer  our producer against Kafka's ProducerPerformance (bench/producer.py)
consumer  the monitor's tail against Kafka's ConsumerPerformance (bench/consumer.py)
floor     Spark's micro-batch floor: rate source → noop sink (bench/floor.py)
transforms  JVM CPU per record of the job's transforms on an in-memory batch (bench/transforms.py)
drain     a backlog drained by the job as shipped, against the same plans as one batch job
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import orjson

from bench.pipeline import add_pipeline_options, options_from


def pipeline_main(argv: list[str]) -> int:
    """`python -m bench pipeline`."""
    from bench import pipeline

    parser = argparse.ArgumentParser(
        prog="python -m bench pipeline", description=pipeline.__doc__.splitlines()[0]
    )
    add_pipeline_options(parser)
    parser.add_argument("--rate", type=float, required=True, help="offered tx/s")
    parser.add_argument(
        "--duration", type=float, default=30.0, help="seconds of producing (default %(default)s)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the whole result as JSON (default: a summary)"
    )
    parser.add_argument(
        "--spark-jfr",
        type=Path,
        default=None,
        metavar="DIR",
        help="record a Java Flight Recording (profile settings) of the Spark JVM into DIR",
    )
    parser.add_argument("--no-save", action="store_true", help="do not write the result to bench/results/")
    args = parser.parse_args(argv)
    options = dataclasses.replace(options_from(args, args.rate, args.duration), spark_jfr=args.spark_jfr)
    result = pipeline.run(options)
    if not args.no_save:
        pipeline.progress(f"saved {pipeline.save(result, 'pipeline')}")
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        from bench.report import one_line

        print(one_line(result))
    return 0 if result["lost"] == 0 and result["drained"] else 1


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a command."""
    argv = sys.argv[1:] if argv is None else argv
    commands = ("pipeline", "sustain", "report", "producer", "consumer", "floor", "tail-delay", "monitor",
                "transforms", "drain")
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, rest = argv[0], argv[1:]
    if command == "pipeline":
        return pipeline_main(rest)
    if command == "sustain":
        from bench import sustain

        return sustain.main(rest)
    if command == "report":
        from bench import report

        return report.main(rest)
    if command == "producer":
        from bench import producer

        return producer.main(rest)
    if command == "consumer":
        from bench import consumer

        return consumer.main(rest)
    if command == "monitor":
        from bench import monitor

        return monitor.main(rest)
    if command == "transforms":
        from bench import transforms

        return transforms.main(rest)
    if command == "drain":
        from bench import drain

        return drain.main(rest)
    if command == "tail-delay":
        from bench import taildelay

        return taildelay.main(rest)
    from bench import floor

    return floor.main(rest)


if __name__ == "__main__":
    sys.exit(main())
