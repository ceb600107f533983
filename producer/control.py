"""Commands on the producer's stdin that inject the patterns the account rules look for.

One command a line; each is answered by one line on stdout once its records are handed to Kafka:

    burst [N]   N transactions above the large threshold on one account, at once (default: twice
                the velocity count of [rules]) → `burst account=<iban> count=<N> first_tx=<id> last_tx=<id>`
    cardtest    one transaction under the small amount, then one above the large threshold, on one
                account → `cardtest account=<iban> small_tx=<id> small=<RON> large_tx=<id> large=<RON>`

Either takes `above=<RON>` (the large threshold) and `under=<RON>` (the small amount) in place of the
producer's own, so a monitor that follows the rules in force (txmon.rules) injects what they look for.

Anything else is answered `error <why>`. Replies are `key=value` words after the command's name, so a
supervisor can match each reply to its request and read the account to watch for.
"""

from __future__ import annotations

import queue
import random
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from producer.generator import MERCHANTS, TransactionGenerator
from txmon_core.records.transaction import format_cents, leading_tx_id

if TYPE_CHECKING:
    from txmon_core.rules_log import Rules

BURST = "burst"
CARD_TEST = "cardtest"
USAGE = "commands: burst [N] [above=RON] [under=RON], cardtest [above=RON] [under=RON]"
MAX_BURST = 10_000
MAX_AMOUNT_CENTS = 100_000_000  # 1,000,000 RON: far above any threshold a bank sets


class CommandError(ValueError):
    """A line that is not a command; the message says why."""


@dataclass(frozen=True)
class Command:
    """One parsed command: its name and, for a burst, how many transactions (None: the default).

    `above_cents` / `under_cents`: the large threshold and small amount to inject for, when the sender
    knows newer ones than the producer's flags (None: the producer's own).
    """

    name: str
    count: int | None = None
    above_cents: int | None = None
    under_cents: int | None = None

    def line(self) -> str:
        """The command as a line for the producer's stdin (what parse_command reads back)."""
        words = [self.name] + ([str(self.count)] if self.count is not None else [])
        words += [f"{key}={format_cents(cents)}" for key, cents in
                  (("above", self.above_cents), ("under", self.under_cents)) if cents is not None]
        return " ".join(words)


def command_for(name: str, rules: Rules) -> Command:
    """`name` (burst or cardtest) shaped for a version of the rules: what it injects, they flag."""
    return Command(name, 2 * rules.account.velocity_count if name == BURST else None,
                   above_cents=round(rules.large_threshold * 100),
                   under_cents=round(rules.account.small_amount * 100))


def parse_command(line: str) -> Command | None:
    """The command on one line; None for a blank line; CommandError for anything else."""
    words = line.split()
    if not words:
        return None
    name, args = words[0].lower(), words[1:]
    if name not in (BURST, CARD_TEST):
        raise CommandError(f"unknown command {line.strip()!r} ({USAGE})")
    count = None
    if name == BURST and args and "=" not in args[0]:
        if not args[0].isdigit() or not 1 <= int(args[0]) <= MAX_BURST:
            raise CommandError(f"burst takes a count from 1 to {MAX_BURST}, got {args[0]!r}")
        count, args = int(args[0]), args[1:]
    amounts: dict[str, int] = {}
    for word in args:
        key, _, value = word.partition("=")
        if key not in ("above", "under") or key in amounts:
            raise CommandError(f"{name}: unexpected {word!r} ({USAGE})")
        amounts[key] = _cents(name, key, value)
    return Command(name, count, amounts.get("above"), amounts.get("under"))


def _cents(name: str, key: str, value: str) -> int:
    """A positive RON amount with at most two decimals, in cents."""
    whole, _, fraction = value.partition(".")
    if not (whole.isdigit() and (fraction.isdigit() or not fraction) and len(fraction) <= 2
            and value.count(".") <= 1):
        raise CommandError(f"{name}: {key} takes an amount in RON like 800 or 0.50, got {value!r}")
    cents = int(whole) * 100 + int(fraction.ljust(2, "0") or 0)
    if not 0 < cents <= MAX_AMOUNT_CENTS:
        raise CommandError(f"{name}: {key} must be above 0 and at most {format_cents(MAX_AMOUNT_CENTS)}")
    return cents


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
        self.large_cents = self._above(large_threshold_cents)
        self.small_cents = self._under(small_amount_cents)
        self.burst_size = burst_size
        # Unseeded on purpose: injections must not change the seeded sequence, nor repeat an account.
        self.rng = rng or random.Random()
        self.merchants = [name for name, _weight in MERCHANTS]

    def serve(self, command: Command) -> Injection:
        """The records and reply of one command."""
        large = self.large_cents if command.above_cents is None else self._above(command.above_cents)
        small = self.small_cents if command.under_cents is None else self._under(command.under_cents)
        if command.name == BURST:
            return self.burst(command.count or self.burst_size, large)
        return self.card_test(large, small)

    # Both comparisons of the rules are strict: large is above the threshold, small is under.
    def _above(self, threshold_cents: int) -> tuple[int, int]:
        """The cents a large transaction is drawn from: above the threshold, up to the generator's top."""
        return threshold_cents + 1, max(self.generator.max_cents, threshold_cents + 1)

    @staticmethod
    def _under(small_cents: int) -> tuple[int, int]:
        """The cents a small transaction is drawn from: under the small amount, at least 0.01."""
        return 1, max(1, small_cents - 1)

    def burst(self, count: int, large: tuple[int, int] | None = None) -> Injection:
        """`count` transactions on one account above the large threshold (a cent range)."""
        account, cents = self.rng.choice(self.generator.accounts), large or self.large_cents
        records = [self._record(account, self.rng.randint(*cents)) for _ in range(count)]
        first, last = _tx_id(records[0][1]), _tx_id(records[-1][1])
        return Injection(records, f"{BURST} account={account} count={count} first_tx={first} last_tx={last}")

    def card_test(self, large: tuple[int, int] | None = None,
                  small: tuple[int, int] | None = None) -> Injection:
        """A small transaction, then a large one, on one account (cent ranges: the producer's own)."""
        account = self.rng.choice(self.generator.accounts)
        small_cents = self.rng.randint(*(small or self.small_cents))
        large_cents = self.rng.randint(*(large or self.large_cents))
        records = [self._record(account, small_cents), self._record(account, large_cents)]
        small_tx, large_tx = _tx_id(records[0][1]), _tx_id(records[1][1])
        return Injection(
            records,
            f"{CARD_TEST} account={account} small_tx={small_tx} small={format_cents(small_cents)} "
            f"large_tx={large_tx} large={format_cents(large_cents)}",
        )

    def _record(self, account: str, cents: int) -> tuple[bytes, bytes]:
        return self.generator.record(account, cents, self.rng.choice(self.merchants))


def _tx_id(value: bytes) -> str:
    return leading_tx_id(value).decode()  # every record the generator writes starts with its tx_id


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
