"""Commands on the producer's stdin that inject the patterns the account rules look for.

One command a line; each is answered by one line on stdout once its records are handed to Kafka:

    burst [N]   N transactions above the large threshold on one account, at once (default: twice
                the velocity count of [rules]) → `burst account=<iban> count=<N> first_tx=<id> last_tx=<id>`
    cardtest    one transaction under the small amount, then one above the large threshold, on one
                account → `cardtest account=<iban> small_tx=<id> small=<RON> large_tx=<id> large=<RON>`

Anything else is answered `error <why>`. Replies are `key=value` words after the command's name, so a
supervisor can match each reply to its request and read the account to watch for.
"""

from __future__ import annotations

import queue
import random
import threading
from dataclasses import dataclass
from typing import TextIO

from producer.generator import MERCHANTS, TransactionGenerator
from producer.transaction import format_cents

BURST = "burst"
CARD_TEST = "cardtest"
USAGE = "commands: burst [N], cardtest"
MAX_BURST = 10_000


class CommandError(ValueError):
    """A line that is not a command; the message says why."""


@dataclass(frozen=True)
class Command:
    """One parsed command: its name and, for a burst, how many transactions (None: the default)."""

    name: str
    count: int | None = None


def parse_command(line: str) -> Command | None:
    """The command on one line; None for a blank line; CommandError for anything else."""
    words = line.split()
    if not words:
        return None
    name, args = words[0].lower(), words[1:]
    if name == BURST and len(args) <= 1:
        if not args:
            return Command(BURST)
        if not args[0].isdigit() or not 1 <= int(args[0]) <= MAX_BURST:
            raise CommandError(f"burst takes a count from 1 to {MAX_BURST}, got {args[0]!r}")
        return Command(BURST, int(args[0]))
    if name == CARD_TEST and not args:
        return Command(CARD_TEST)
    raise CommandError(f"unknown command {line.strip()!r} ({USAGE})")


@dataclass(frozen=True)
class Injection:
    """Records to produce now, and the reply line to print once they are handed over."""

    records: list[tuple[bytes, bytes]]
    reply: str


class Injector:
    """Builds the records of a command from the generator: same run prefix and sequence, time now."""

    def __init__(
        self,
        generator: TransactionGenerator,
        *,
        large_threshold_cents: int,
        small_amount_cents: int,
        burst_size: int,
        rng: random.Random | None = None,
    ) -> None:
        self.generator = generator
        # Both comparisons of the rules are strict: large is above the threshold, small is under.
        self.large_cents = (large_threshold_cents + 1, max(generator.max_cents, large_threshold_cents + 1))
        self.small_cents = (1, max(1, small_amount_cents - 1))
        self.burst_size = burst_size
        # Unseeded on purpose: injections must not change the seeded sequence, nor repeat an account.
        self.rng = rng or random.Random()
        self.merchants = [name for name, _weight in MERCHANTS]

    def serve(self, command: Command) -> Injection:
        """The records and reply of one command."""
        if command.name == BURST:
            return self.burst(command.count or self.burst_size)
        return self.card_test()

    def burst(self, count: int) -> Injection:
        """`count` large transactions on one account."""
        account = self.rng.choice(self.generator.accounts)
        records = [self._record(account, self._large()) for _ in range(count)]
        first, last = _tx_id(records[0][1]), _tx_id(records[-1][1])
        return Injection(records, f"{BURST} account={account} count={count} first_tx={first} last_tx={last}")

    def card_test(self) -> Injection:
        """A small transaction, then a large one, on one account."""
        account = self.rng.choice(self.generator.accounts)
        small_cents, large_cents = self.rng.randint(*self.small_cents), self._large()
        records = [self._record(account, small_cents), self._record(account, large_cents)]
        small_tx, large_tx = _tx_id(records[0][1]), _tx_id(records[1][1])
        return Injection(
            records,
            f"{CARD_TEST} account={account} small_tx={small_tx} small={format_cents(small_cents)} "
            f"large_tx={large_tx} large={format_cents(large_cents)}",
        )

    def _large(self) -> int:
        return self.rng.randint(*self.large_cents)

    def _record(self, account: str, cents: int) -> tuple[bytes, bytes]:
        return self.generator.record(account, cents, self.rng.choice(self.merchants))


def _tx_id(value: bytes) -> str:
    # Every record the generator writes starts with {"tx_id":"…".
    start = len(b'{"tx_id":"')
    return value[start : value.index(b'"', start)].decode()


class CommandReader:
    """Reads command lines from a stream in a daemon thread; the publish loop serves them with `take`.

    The thread only queues lines: records are built on the loop's thread, which owns the generator.
    """

    def __init__(self, stream: TextIO, injector: Injector) -> None:
        self.stream = stream
        self.injector = injector
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._read, name="producer-commands", daemon=True)

    def start(self) -> CommandReader:
        """Start reading; returns self."""
        self.thread.start()
        return self

    def _read(self) -> None:
        # Ends at end of input (the supervisor closed the pipe); the producer keeps producing.
        for line in self.stream:
            self.lines.put(line)

    def take(self) -> list[Injection]:
        """The injections of every line read since the last call (an error reply for a bad line)."""
        injections = []
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return injections
            try:
                command = parse_command(line)
            except CommandError as exc:
                injections.append(Injection([], f"error {exc}"))
                continue
            if command is not None:
                injections.append(self.injector.serve(command))
