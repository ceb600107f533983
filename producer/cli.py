"""`txmon-producer`: publish generated card transactions to Kafka at a steady rate."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

from confluent_kafka import KafkaError, KafkaException, Producer

from producer.control import CommandReader, Injector
from producer.generator import DEFAULT_MAX_CENTS, DEFAULT_MIN_CENTS, TransactionGenerator
from producer.publish import delivery_settings, publish
from txmon_core.options import (
    add_kafka_options,
    add_threshold_options,
    add_version,
    amount_cents,
    client_config,
    fail,
    positive_float,
    positive_int,
    require_bootstrap,
)
from txmon_core.paths import private_files
from txmon_core.records import ready
from txmon_core.records.transaction import format_cents
from txmon_core.rules import rule_settings
from txmon_core.settings import SettingsError, add_settings_option, resolve, section
from txmon_core.topics import KafkaAccessError, add_topic_options, ensure_topics, resolve_topics

DEFAULT_RATE = 100.0
COMMANDS_HELP = """\
commands (with --commands, one a line on stdin; each answered by one line on stdout):
  burst [N]   N transactions above the large threshold on one account, at once
              (default: twice velocity_count of [rules] in the settings file)
              → burst account=IBAN count=N first_tx=ID last_tx=ID
  cardtest    a transaction under small_amount of [rules], then one above the large
              threshold, on one account
              → cardtest account=IBAN small_tx=ID small=RON large_tx=ID large=RON
  anything else → error WHY
"""
RATE_MAX = "max"
FLUSH_TIMEOUT = 30.0
DEFAULT_STARTUP_TIMEOUT = 15.0
# Throughput settings measured with `python -m bench.producer` (see bench/producer.py): batching and a
# short linger let librdkafka send large requests; the local queue holds a few seconds at top speed.
# -X overrides any of them.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,  # implies acks=all and safe retries: no duplicates, no reordering
    "linger.ms": 10,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "compression.type": "lz4",
    "client.id": "txmon-producer",
}


def rate_value(text: str) -> float | None:
    """An argparse type for --rate: a number of tx/s > 0, or `max` (as fast as the broker takes them)."""
    if text.strip().lower() == RATE_MAX:
        return None
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a number > 0 or '{RATE_MAX}', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The command line of txmon-producer."""
    parser = argparse.ArgumentParser(
        prog="txmon-producer",
        description="Publish generated card transactions (JSON) to Kafka at a steady rate.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=COMMANDS_HELP,
    )
    parser.add_argument(
        "--rate",
        type=rate_value,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"transactions per second, or '{RATE_MAX}' for as fast as possible (default: %(default)s)",
    )
    parser.add_argument(
        "--count",
        type=positive_int,
        metavar="N",
        help="produce exactly N transactions, wait until all are acknowledged, then exit",
    )
    parser.add_argument(
        "--seed", type=int, help="same seed, same sequence of accounts, merchants and amounts"
    )
    parser.add_argument(
        "--min-amount",
        type=amount_cents,
        default=None,
        metavar="RON",
        help=f"smallest amount, inclusive (default {format_cents(DEFAULT_MIN_CENTS)}); with --min-amount or "
        "--max-amount amounts are uniform over the range, for load tests, instead of people-like "
        "spending (each account around its own typical amount, few above 500)",
    )
    parser.add_argument(
        "--max-amount",
        type=amount_cents,
        default=None,
        metavar="RON",
        help=f"largest amount, inclusive (default {format_cents(DEFAULT_MAX_CENTS)})",
    )
    parser.add_argument(
        "--ack-log",
        type=Path,
        metavar="FILE",
        help="append the tx_id of every acknowledged transaction to FILE, one per line",
    )
    parser.add_argument(
        "--startup-timeout",
        type=positive_float,
        default=DEFAULT_STARTUP_TIMEOUT,
        metavar="SECONDS",
        help="give up when the broker does not answer within this time (default: %(default)s)",
    )
    parser.add_argument(
        "--commands",
        action="store_true",
        help="read commands from stdin while producing (see below); off by default, so that a producer "
        "started in the background of a shell never waits for the terminal",
    )
    add_threshold_options(parser, alert=False)
    add_settings_option(parser)
    add_kafka_options(parser)
    add_topic_options(parser, only=["transactions"], aliases={"transactions": ["--topic"]})
    add_version(parser)
    return parser


class _Signals:
    """SIGTERM/SIGINT set `stop`; a second one sets `force` (cut the final flush short)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.force = threading.Event()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set():
            self.force.set()
        self.stop.set()

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Install the handlers for the duration of the block, then restore the previous ones."""
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# When each kind of client error was last reported (the callback runs on the main thread, in poll()).
_reported_errors: dict[str, float] = {}


def _error_callback(err: KafkaError) -> None:
    """Report client-level errors (broker down, auth) once per kind of error a minute, not per retry."""
    now = time.monotonic()
    key = err.str()
    if now - _reported_errors.get(key, -60.0) >= 60.0:
        _reported_errors[key] = now
        print(f"producer: kafka: {key}", file=sys.stderr, flush=True)


def producer_config(client: dict[str, str], *, ack_log: bool = False) -> dict[str, Any]:
    """The full Producer configuration: our defaults, then the user's -b/-X settings on top."""
    return {
        **PRODUCER_DEFAULTS,
        **delivery_settings(ack_log=ack_log),
        # Our own error callback replaces librdkafka's log lines, one per retry, about a broker that is
        # down; -X log_level=6 brings them back.
        "error_cb": _error_callback,
        "log_level": 2,
        **client,
    }


def _text(exc: KafkaException) -> str:
    """The message of a KafkaException, whose first argument is usually a KafkaError."""
    first = exc.args[0] if exc.args else exc
    return first.str() if isinstance(first, KafkaError) else str(first)


def _fail(message: str) -> int:
    """Print one error line and return the exit status for it."""
    return fail("txmon-producer", message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run txmon-producer; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    private_files()  # e.g. the acknowledgement log: the user's only
    low = DEFAULT_MIN_CENTS if args.min_amount is None else args.min_amount
    high = DEFAULT_MAX_CENTS if args.max_amount is None else args.max_amount
    if low > high:
        parser.error("argument --min-amount: must not be larger than --max-amount")
    try:
        settings = resolve(args.settings)
        rules = rule_settings(section(settings, "rules"))
        client = client_config(args, settings)
        topic = resolve_topics(settings, args).transactions
    except SettingsError as exc:
        parser.error(str(exc))
    require_bootstrap(parser, client)

    config = producer_config(client, ack_log=args.ack_log is not None)
    servers = config["bootstrap.servers"]
    try:
        producer = Producer(config)
    except KafkaException as exc:
        return _fail(f"bad Kafka client setting: {_text(exc)}")

    signals = _Signals()
    with ExitStack() as stack:
        stack.enter_context(signals.installed())
        ack_log: BinaryIO | None = None
        if args.ack_log is not None:
            try:
                ack_log = stack.enter_context(args.ack_log.open("ab"))
            except OSError as exc:
                return _fail(f"cannot open --ack-log {args.ack_log}: {exc.strerror}")
        try:
            # First: it fails at once on refused credentials or certificates, and in bounded time when
            # no broker answers, with one plain line either way.
            ensure_topics(client, [topic], partitions=args.partitions, timeout=args.startup_timeout)
        except KafkaAccessError as exc:
            return _fail(str(exc))
        except KafkaException as exc:
            return _fail(f"cannot create topic {topic!r}: {_text(exc)}")
        try:
            # A metadata request with a deadline: an unreachable broker ends here, in bounded time.
            producer.list_topics(timeout=args.startup_timeout)
        except KafkaException as exc:
            return _fail(f"cannot reach Kafka at {servers} within {args.startup_timeout:g}s: {_text(exc)}")

        generator = TransactionGenerator(args.seed, min_cents=args.min_amount, max_cents=args.max_amount)
        commands = None
        if args.commands:
            injector = Injector(generator, large_threshold_cents=round(args.large_threshold * 100),
                                small_amount_cents=round(rules.small_amount * 100),
                                burst_size=2 * rules.velocity_count)
            commands = CommandReader(sys.stdin, injector).start().take
        rate_text = RATE_MAX if args.rate is None else f"{args.rate:g}"
        print(ready.producer_line(servers, topic, rate_text), flush=True)
        result = publish(
            producer,
            generator,
            topic,
            rate=args.rate,
            count=args.count,
            stop=signals.stop,
            ack_log=ack_log,
            flush_timeout=FLUSH_TIMEOUT,
            force=signals.force,
            injections=commands,
        )
    print(result.summary(), flush=True)
    if result.counts.failed:
        return _fail(f"{result.counts.failed} transactions not delivered: {result.counts.first_error}")
    return 0
