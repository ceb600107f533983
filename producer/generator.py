"""A seeded, fast generator of realistic card transactions, already encoded as Kafka keys and values.

Spending looks like people's: many accounts, each paying a few times an hour at most, each with its own
typical amount (a student's 25 RON, a family's 150 RON), every purchase varying around it; most are
small and few are large, so the account rules stay quiet on normal traffic (an amount range given
instead draws amounts uniformly in it, for load tests).

Per-record cost decides the producer's throughput, so everything that can be is prepared once: each
account's key bytes and JSON fragment, each merchant's JSON string, the amount texts of each spending
level. A record is then one random draw per field and one f-string.

Determinism: accounts, merchants and amounts each come from their own `random.Random` seeded from
`seed`, and `random.choices` uses exactly one draw per item, so the same seed gives the same sequence
whatever the batch sizes. `tx_id` and `ts` are deliberately not seeded: ids must be unique across runs
and `ts` is the event time.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import overload

import orjson

from producer.iban import BBAN_ACCOUNT_LENGTH, make_iban
from txmon_core.records.transaction import (
    CURRENCY,
    VALUE_PREFIX,
    Transaction,
    decode,
    format_cents,
    format_ts,
)

DEFAULT_MIN_CENTS = 100  # 1.00 RON
DEFAULT_MAX_CENTS = 100_000  # 1,000.00 RON
DEFAULT_ACCOUNTS = 50_000
# Zipf-Mandelbrot popularity, weight 1 / (rank + offset) ** exponent: the offset flattens the head so that
# the busiest account makes ~0.025% of transactions (about 1.5 a minute at 100 tx/s, a busy person),
# the quietest a tenth of that.
ZIPF_EXPONENT = 1.0
ZIPF_OFFSET = 1_000.0
# People's spending, log-normal twice over: each account's typical amount (median TYPICAL_CENTS, spread
# TYPICAL_SIGMA across accounts), and each purchase around its account's typical amount (PURCHASE_SIGMA).
# About 3% of purchases are above 500 RON and under 1% above 900 RON; none under 1 RON.
TYPICAL_CENTS = 6_000
TYPICAL_SIGMA = 0.7
PURCHASE_SIGMA = 0.6
# Typical amounts are rounded to SPENDING_LEVELS steps on a log scale; each level keeps LEVEL_SAMPLES
# amount texts drawn once, so a record costs one index draw and no formatting.
SPENDING_LEVELS = 40
LEVEL_SAMPLES = 2_048
# The account universe is the same in every run (a bank's customers do not change with --seed).
UNIVERSE_SEED = "txmon-accounts-v1"
# Above this many distinct amounts, texts are formatted per record instead of kept in a table.
_AMOUNT_TABLE_LIMIT = 250_000

# Romanian bank codes as they appear in IBANs, weighted roughly by market share.
BANKS: tuple[tuple[str, int], ...] = (
    ("BTRL", 24),  # Banca Transilvania
    ("RNCB", 18),  # BCR
    ("BRDE", 13),  # BRD - Groupe Societe Generale
    ("INGB", 10),  # ING Bank
    ("RZBR", 8),  # Raiffeisen Bank
    ("BACX", 8),  # UniCredit Bank
    ("CECE", 7),  # CEC Bank
    ("OTPV", 4),  # OTP Bank
    ("UGBI", 3),  # Garanti BBVA
    ("WBAN", 2),  # Intesa Sanpaolo
    ("BREL", 2),  # Libra Internet Bank
    ("PIRB", 1),  # First Bank
)

# Real merchants card holders in Romania pay, weighted so groceries and fuel dominate.
MERCHANTS: tuple[tuple[str, int], ...] = (
    ("Mega Image", 60),
    ("Kaufland", 55),
    ("Lidl", 55),
    ("Carrefour", 45),
    ("Profi", 40),
    ("Auchan", 30),
    ("Penny", 30),
    ("Selgros", 8),
    ("Metro", 8),
    ("La Doi Pași", 10),
    ("OMV Petrom", 30),
    ("Rompetrol", 20),
    ("MOL", 18),
    ("Lukoil", 12),
    ("eMAG", 35),
    ("Altex", 10),
    ("Flanco", 6),
    ("Dedeman", 15),
    ("Leroy Merlin", 8),
    ("Hornbach", 5),
    ("IKEA", 6),
    ("JYSK", 4),
    ("Pepco", 8),
    ("Decathlon", 6),
    ("H&M", 8),
    ("Zara", 6),
    ("Catena", 12),
    ("Dr. Max", 10),
    ("Help Net", 6),
    ("Sensiblu", 6),
    ("Cărturești", 4),
    ("Libris", 2),
    ("Glovo", 15),
    ("Tazz", 10),
    ("Bolt", 15),
    ("Uber", 8),
    ("McDonald's", 15),
    ("KFC", 8),
    ("5 to go", 10),
    ("CFR Călători", 4),
    ("Orange România", 5),
    ("Digi", 5),
)


def _account_part(rng: random.Random, bank: str) -> str:
    """The 16-character account part in the style of `bank` (Banca Transilvania uses RONCRT...)."""
    if bank == "BTRL":
        return "RONCRT" + "".join(rng.choices("0123456789", k=BBAN_ACCOUNT_LENGTH - 6))
    return "".join(rng.choices("0123456789", k=BBAN_ACCOUNT_LENGTH))


def make_accounts(n: int = DEFAULT_ACCOUNTS, seed: str = UNIVERSE_SEED) -> list[str]:
    """`n` distinct Romanian IBANs, in popularity order (the first is the busiest)."""
    rng = random.Random(seed)
    names, weights = zip(*BANKS, strict=True)
    accounts: dict[str, None] = {}  # a dict keeps insertion order, which is the popularity rank
    while len(accounts) < n:
        bank = rng.choices(names, weights)[0]
        accounts.setdefault(make_iban(bank, _account_part(rng, bank)))
    return list(accounts)


def popularity(n: int, exponent: float = ZIPF_EXPONENT, offset: float = ZIPF_OFFSET) -> list[float]:
    """Cumulative Zipf-Mandelbrot weights of ranks 1..n, as `random.choices(cum_weights=...)` takes them."""
    return list(accumulate(1.0 / (rank + offset) ** exponent for rank in range(1, n + 1)))


# Levels span the typical amounts of all but one account in ten thousand (±3.7 sigma), log-spaced.
_LEVEL_LOW = math.log(TYPICAL_CENTS) - 3.7 * TYPICAL_SIGMA
_LEVEL_STEP = 2 * 3.7 * TYPICAL_SIGMA / (SPENDING_LEVELS - 1)


def _clamp(value: int, low: int, high: int) -> int:
    return min(max(value, low), high)


def spending_levels(min_cents: int, max_cents: int, seed: str = UNIVERSE_SEED) -> list[list[str]]:
    """Amount texts of each spending level (lowest typical amount first), within [min_cents, max_cents]."""
    rng = random.Random(f"{seed}:purchases")
    levels = []
    for level in range(SPENDING_LEVELS):
        typical = math.exp(_LEVEL_LOW + level * _LEVEL_STEP)
        cents = (round(typical * rng.lognormvariate(0.0, PURCHASE_SIGMA)) for _ in range(LEVEL_SAMPLES))
        levels.append([format_cents(_clamp(c, min_cents, max_cents)) for c in cents])
    return levels


def account_levels(n: int, seed: str = UNIVERSE_SEED) -> list[int]:
    """Each of `n` accounts' spending level (its typical amount), the same in every run."""
    rng = random.Random(f"{seed}:typical")
    mean = math.log(TYPICAL_CENTS)
    return [_clamp(round((rng.gauss(mean, TYPICAL_SIGMA) - _LEVEL_LOW) / _LEVEL_STEP), 0, SPENDING_LEVELS - 1)
            for _ in range(n)]


def new_run_id() -> str:
    """A random per-run tx_id prefix (48 bits): ids stay unique across runs, seeded or not."""
    return "p" + os.urandom(6).hex()


class _AmountTexts(Sequence[str]):
    """Amount texts for cents lo..hi formatted on access: `random.choices` indexes it like a table."""

    def __init__(self, lo: int, hi: int) -> None:
        self._lo = lo
        self._len = hi - lo + 1

    def __len__(self) -> int:
        return self._len

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        if not -self._len <= index < self._len:
            raise IndexError(index)
        return format_cents(self._lo + index % self._len)


class TransactionGenerator:
    """Seeded transactions as (key, value) bytes, ready for `Producer.produce`."""

    def __init__(
        self,
        seed: int | None = None,
        *,
        min_cents: int | None = None,
        max_cents: int | None = None,
        accounts: int = DEFAULT_ACCOUNTS,
        run_id: str | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        """People-like spending within 1.00..1,000.00 RON; with `min_cents` or `max_cents`, amounts
        uniform over the range instead (the other bound keeps its default)."""
        self.uniform = min_cents is not None or max_cents is not None
        min_cents = DEFAULT_MIN_CENTS if min_cents is None else min_cents
        max_cents = DEFAULT_MAX_CENTS if max_cents is None else max_cents
        if not 0 < min_cents <= max_cents:
            raise ValueError(f"need 0 < min_cents <= max_cents, got {min_cents}..{max_cents}")
        self.seed = int.from_bytes(os.urandom(8), "big") if seed is None else seed
        self.run_id = run_id or new_run_id()
        self.min_cents = min_cents
        self.max_cents = max_cents
        self.accounts = make_accounts(accounts)
        self._clock_ns = clock_ns
        self._sequence = 0
        self._last_ms = -1
        self._ts = ""
        # One stream per field, so batch sizes cannot change which value a field draws.
        self._account_rng = random.Random(f"{self.seed}:accounts")
        self._merchant_rng = random.Random(f"{self.seed}:merchants")
        self._amount_rng = random.Random(f"{self.seed}:amounts")
        self._account_weights = popularity(len(self.accounts))
        self._account_index = range(len(self.accounts))
        self._keys = [a.encode() for a in self.accounts]
        # The JSON between the tx_id and the merchant, per account: `","account_id":"RO..","merchant":`.
        self._account_json = [f'","account_id":"{a}","merchant":' for a in self.accounts]
        # Each merchant repeated by its (integer) weight: an exact weighted draw that costs a third of
        # a `cum_weights` bisection.
        self._merchant_table = [
            orjson.dumps(name).decode() for name, weight in MERCHANTS for _ in range(weight)
        ]
        # Each account's amount texts: its spending level's, or the whole range's when uniform. A record
        # draws an index into them, so both ways cost the same.
        self._account_amounts: list[Sequence[str]]
        if self.uniform:
            span = max_cents - min_cents + 1
            amounts: Sequence[str] = (
                [format_cents(c) for c in range(min_cents, max_cents + 1)]
                if span <= _AMOUNT_TABLE_LIMIT
                else _AmountTexts(min_cents, max_cents)
            )
            self._account_amounts = [amounts] * len(self.accounts)
            self._amount_index: Sequence[int] = range(span)
        else:
            levels = spending_levels(min_cents, max_cents)
            self._account_amounts = [levels[level] for level in account_levels(len(self.accounts))]
            self._amount_index = list(range(LEVEL_SAMPLES))  # a list draws faster than a range

    @property
    def generated(self) -> int:
        """How many records this generator has made."""
        return self._sequence

    def batch(self, n: int) -> tuple[list[bytes], list[bytes]]:
        """The next `n` records as parallel lists of keys and values."""
        accounts = self._account_rng.choices(self._account_index, cum_weights=self._account_weights, k=n)
        merchants = self._merchant_rng.choices(self._merchant_table, k=n)
        picks = self._amount_rng.choices(self._amount_index, k=n)
        keys = self._keys
        account_json = self._account_json
        account_amounts = self._account_amounts
        clock_ns = self._clock_ns
        last_ms = self._last_ms
        ts = self._ts
        prefix = f"{VALUE_PREFIX}{self.run_id}-"
        tail = f',"currency":"{CURRENCY}","ts":"'
        seq = self._sequence
        values = []
        append = values.append
        for account, merchant, pick in zip(accounts, merchants, picks, strict=True):
            seq += 1
            amount = account_amounts[account][pick]
            # Formatting a timestamp costs ~1 us; do it once per millisecond, not once per record.
            now_ms = clock_ns() // 1_000_000
            if now_ms != last_ms:
                last_ms = now_ms
                ts = format_ts(now_ms)
            append(
                f'{prefix}{seq:012d}{account_json[account]}{merchant},"amount":{amount}{tail}{ts}"}}'.encode()
            )
        self._sequence = seq
        self._last_ms = last_ms
        self._ts = ts
        return [keys[a] for a in accounts], values

    def record(self, account: str, cents: int, merchant: str) -> tuple[bytes, bytes]:
        """One record for `account` of exactly `cents`, time now, next in the sequence (injected patterns).

        The seeded draws are untouched, so a seeded run makes the same accounts, merchants and amounts
        with or without injections in between.
        """
        self._sequence += 1
        tx = Transaction(f"{self.run_id}-{self._sequence:012d}", account, merchant, cents / 100, CURRENCY,
                         format_ts(self._clock_ns() // 1_000_000))
        return tx.key, tx.encode()

    def transactions(self, n: int) -> list[Transaction]:
        """The next `n` records decoded (for tests and tools; the producer uses `batch`)."""
        return [decode(value) for value in self.batch(n)[1]]
