"""The seeded transaction generator: determinism, unique ids, amounts, accounts and merchants."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from typing import Any

import orjson
import pytest

from producer import iban
from producer.generator import (
    BANKS,
    DEFAULT_ACCOUNTS,
    MERCHANTS,
    TransactionGenerator,
    _AmountTexts,
    make_accounts,
)
from spark_app.account_rules import AccountRules, AccountState, Event
from txmon_core.records.alert import DEFAULT_LARGE_THRESHOLD
from txmon_core.records.transaction import format_cents, format_ts
from txmon_core.rules import RuleSettings

TX_ID = re.compile(r"p[0-9a-f]{12}-(\d{12})")
AMOUNT_TEXT = re.compile(rb'"amount":(\d+)\.(\d{2}),')


@pytest.fixture(scope="module")
def sample() -> list[dict[str, object]]:
    """100,000 records of one seeded generator, parsed (orjson: the full decoder is tested elsewhere)."""
    return [orjson.loads(v) for v in TransactionGenerator(seed=11).batch(100_000)[1]]


def mod97(text: str) -> int:
    """ISO 13616's check, written independently of the code under test: base-36 digits, mod 97."""
    rearranged = text[4:] + text[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97


def drawn(gen: TransactionGenerator, n: int, batch: int = 1000) -> list[tuple[str, str, float]]:
    """The seeded part (account, merchant, amount) of the next `n` records, drawn `batch` at a time."""
    out = []
    while len(out) < n:
        for tx in gen.transactions(min(batch, n - len(out))):
            out.append((tx.account_id, tx.merchant, tx.amount))
    return out


def test_same_seed_same_sequence_whatever_the_batch_sizes() -> None:
    first = drawn(TransactionGenerator(seed=42), 5_000, batch=1)
    assert drawn(TransactionGenerator(seed=42), 5_000, batch=1_000) == first
    assert drawn(TransactionGenerator(seed=42), 5_000, batch=777) == first


def test_different_seeds_differ() -> None:
    assert drawn(TransactionGenerator(seed=1), 100) != drawn(TransactionGenerator(seed=2), 100)


def test_unseeded_generators_differ_and_report_their_seed() -> None:
    a, b = TransactionGenerator(), TransactionGenerator()
    assert a.seed != b.seed
    assert drawn(TransactionGenerator(seed=a.seed), 50) == drawn(a, 50)


def test_tx_ids_unique_within_and_across_runs_with_the_same_seed() -> None:
    runs = [TransactionGenerator(seed=7) for _ in range(3)]
    ids = [orjson.loads(v)["tx_id"] for gen in runs for v in gen.batch(30_000)[1]]
    assert len(set(ids)) == len(ids)
    assert len({gen.run_id for gen in runs}) == 3


def test_tx_id_is_run_prefix_and_zero_padded_sequence() -> None:
    gen = TransactionGenerator(seed=7)
    ids = [tx.tx_id for tx in gen.transactions(3)]
    assert [TX_ID.fullmatch(i) is not None for i in ids] == [True] * 3
    assert ids == [f"{gen.run_id}-{n:012d}" for n in (1, 2, 3)]
    assert gen.generated == 3


def test_amounts_have_two_decimals_and_stay_within_inclusive_bounds() -> None:
    gen = TransactionGenerator(seed=5, min_cents=100, max_cents=105)
    values = gen.batch(5_000)[1]
    cents = Counter(int(m[1] + m[2]) for v in values for m in [AMOUNT_TEXT.search(v)] if m)
    assert sum(cents.values()) == len(values)  # every amount written with exactly 2 decimals
    assert set(cents) == set(range(100, 106))  # both bounds are drawn


def test_amounts_look_like_peoples_spending(sample: list[dict[str, Any]]) -> None:
    amounts = [record["amount"] for record in sample]
    assert min(amounts) >= 1.0 and max(amounts) <= 1000.0
    assert all(round(a * 100) == pytest.approx(a * 100, abs=1e-6) for a in amounts)
    # Mostly everyday amounts; few large (above 500), fewer above 900: 1% and 0.2% of 100,000.
    assert 30 <= statistics.median(amounts) <= 120
    assert 500 <= sum(1 for a in amounts if a > 500) <= 2_000
    assert 50 <= sum(1 for a in amounts if a > 900) <= 400
    # Each account spends around its own typical amount: the busiest accounts' medians differ widely,
    # while one account's purchases stay within a few times its median.
    by_account: dict[str, list[float]] = {}
    for record in sample:
        by_account.setdefault(record["account_id"], []).append(record["amount"])
    busiest = sorted(by_account.values(), key=len, reverse=True)[:40]
    medians = [statistics.median(spent) for spent in busiest]
    assert max(medians) > 5 * min(medians)
    spreads = [statistics.quantiles(spent, n=4) for spent in busiest]
    assert statistics.median(q3 / q1 for q1, _, q3 in spreads) < 3


def test_uniform_amounts_when_a_range_is_given() -> None:
    gen = TransactionGenerator(seed=11, min_cents=100)  # the other bound keeps its default, 1,000.00
    assert gen.uniform
    amounts = [tx.amount for tx in gen.transactions(20_000)]
    assert min(amounts) >= 1.0 and max(amounts) <= 1000.0
    assert sum(1 for a in amounts if a > 500) == pytest.approx(10_000, rel=0.05)


def test_normal_traffic_raises_rule_alerts_rarely() -> None:
    """Ten minutes at 100 tx/s through the account rules (defaults) raise at most one alert a minute."""
    rate, minutes, start_ms = 100, 10, 1_795_608_000_000
    gen = TransactionGenerator(seed=3)
    rules = AccountRules(RuleSettings(), DEFAULT_LARGE_THRESHOLD)
    states: dict[str, AccountState] = {}
    raised = 0
    for n, value in enumerate(gen.batch(rate * 60 * minutes)[1]):
        record = orjson.loads(value)
        event = Event(record["tx_id"], start_ms + n * 1000 // rate, record["amount"])
        if rules.matters(event):
            raised += len(rules.observe(states.setdefault(record["account_id"], AccountState()), event))
    assert raised <= minutes, f"{raised} rule alerts in {minutes} minutes of normal traffic"


def test_wide_amount_ranges_format_on_demand_like_the_table() -> None:
    texts = _AmountTexts(1, 10_000)
    table = [format_cents(c) for c in range(1, 10_001)]
    assert len(texts) == len(table)
    assert [texts[i] for i in (0, 1, 99, 9_999, -1)] == [table[i] for i in (0, 1, 99, 9_999, -1)]
    with pytest.raises(IndexError):
        texts[10_000]
    gen = TransactionGenerator(seed=1, min_cents=1, max_cents=100_000_000)
    amounts = [tx.amount for tx in gen.transactions(2_000)]
    assert 0.01 <= min(amounts) and max(amounts) <= 1_000_000.0
    assert max(amounts) > 100_000  # the whole range is used


def test_bad_amount_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        TransactionGenerator(min_cents=0)
    with pytest.raises(ValueError):
        TransactionGenerator(min_cents=200, max_cents=100)


def test_accounts_are_distinct_valid_romanian_ibans() -> None:
    accounts = make_accounts()
    assert len(accounts) == len(set(accounts)) == DEFAULT_ACCOUNTS == 50_000
    banks = {code for code, _ in BANKS}
    for account in accounts:
        assert len(account) == 24 and account.startswith("RO")
        assert account[4:8] in banks
        assert mod97(account) == 1
        assert iban.is_valid(account)


def test_iban_check_digits_match_a_published_example() -> None:
    # The Romanian example of the SWIFT IBAN registry.
    assert iban.make_iban("AAAA", "1B31007593840000") == "RO49AAAA1B31007593840000"
    assert iban.is_valid("RO49AAAA1B31007593840000")
    assert not iban.is_valid("RO49AAAA1B31007593840001")
    assert not iban.is_valid("RO49AAAA1B3100759384000")
    with pytest.raises(ValueError):
        iban.make_iban("AAA1", "1B31007593840000")


def test_accounts_are_skewed_but_widely_spread(sample: list[dict[str, str]]) -> None:
    counts = Counter(record["account_id"] for record in sample)
    busiest = counts.most_common()
    assert len(counts) > 30_000  # most of the 50,000 accounts appear
    assert busiest[0][1] < 100  # no account pays more than a person does: under 0.1% of transactions
    top_tenth = sum(n for _, n in busiest[:5_000])
    assert top_tenth > 0.3 * 100_000  # the busiest 10% make a large share: a Zipf-like skew


def test_merchants_are_real_names_weighted(sample: list[dict[str, str]]) -> None:
    assert 35 <= len(MERCHANTS) <= 50
    counts = Counter(record["merchant"] for record in sample)
    assert set(counts) == {name for name, _ in MERCHANTS}
    assert counts["Mega Image"] > counts["Libris"] * 10


def test_ts_is_event_time_cached_per_millisecond() -> None:
    now = [1_795_608_000_123_456_789]
    gen = TransactionGenerator(seed=1, clock_ns=lambda: now[0])
    first = gen.transactions(2)
    assert [tx.ts for tx in first] == ["2026-11-25T12:00:00.123Z"] * 2
    now[0] += 1_000_000  # one millisecond later
    assert gen.transactions(1)[0].ts == "2026-11-25T12:00:00.124Z"
    now[0] += 60_000_000_000
    assert gen.transactions(1)[0].ts == format_ts(1_795_608_060_124)


def test_keys_are_the_account_ids() -> None:
    keys, values = TransactionGenerator(seed=9).batch(1_000)
    assert [k.decode() for k in keys] == [orjson.loads(v)["account_id"] for v in values]
