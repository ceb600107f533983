"""The producer's stdin commands: parsing, the records a burst and a card test inject, the replies."""

from __future__ import annotations

import io
import random
import threading

import pytest

from producer.control import (
    BURST,
    CARD_TEST,
    Command,
    CommandError,
    CommandReader,
    Injector,
    parse_command,
)
from producer.generator import TransactionGenerator
from producer.publish import publish
from tests.support.fake_producer import FakeClock, FakeProducer
from tests.support.waiting import wait_until
from txmon_core.records.transaction import decode


def injector(generator: TransactionGenerator | None = None, **options: int) -> Injector:
    settings = {"large_threshold_cents": 50_000, "small_amount_cents": 100, "burst_size": 6, **options}
    return Injector(generator or TransactionGenerator(seed=1), rng=random.Random(7), **settings)


def words(reply: str) -> dict[str, str]:
    """The key=value words of a reply after its first word."""
    return dict(word.split("=", 1) for word in reply.split()[1:])


@pytest.mark.parametrize(
    ("line", "command"),
    [("burst\n", Command(BURST)), ("  BURST 12 ", Command(BURST, 12)), ("cardtest", Command(CARD_TEST)),
     ("", None), ("   \n", None), ("burst 6 above=800 under=0.5", Command(BURST, 6, 80_000, 50)),
     ("burst above=800.25", Command(BURST, None, 80_025)),
     ("cardtest under=2", Command(CARD_TEST, under_cents=200))],
)
def test_commands_parse(line: str, command: Command | None) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize("line", ["bursts", "burst 0", "burst -3", "burst x", "burst 1 2", "cardtest 2",
                                  "burst 10001", "burst above=0", "burst above=8e2", "burst above=1.001",
                                  "cardtest under=", "cardtest above=800 above=900", "cardtest over=3",
                                  "burst above=800 6", "burst above=99999999"])
def test_anything_else_is_an_error_that_says_why(line: str) -> None:
    with pytest.raises(CommandError):
        parse_command(line)


def test_a_burst_is_large_transactions_on_one_account() -> None:
    injection = injector().serve(Command(BURST))
    txs = [decode(value) for _key, value in injection.records]
    assert len(txs) == 6  # the default size
    assert len({tx.account_id for tx in txs}) == 1
    assert all(500.0 < tx.amount <= 1000.0 for tx in txs)
    assert all(key == tx.account_id.encode() for (key, _), tx in zip(injection.records, txs, strict=True))
    reply = words(injection.reply)
    assert injection.reply.startswith("burst ")
    assert reply == {"account": txs[0].account_id, "count": "6", "first_tx": txs[0].tx_id,
                     "last_tx": txs[-1].tx_id}


def test_a_card_test_is_a_small_then_a_large_transaction_on_one_account() -> None:
    injection = injector().serve(Command(CARD_TEST))
    small, large = (decode(value) for _key, value in injection.records)
    assert small.account_id == large.account_id
    assert 0 < small.amount < 1.0 and 500.0 < large.amount
    assert small.ts <= large.ts
    assert injection.reply.startswith("cardtest ")
    reply = words(injection.reply)
    assert reply["account"] == small.account_id
    assert (reply["small_tx"], reply["large_tx"]) == (small.tx_id, large.tx_id)
    assert (float(reply["small"]), float(reply["large"])) == (small.amount, large.amount)


def test_thresholds_are_strict_even_at_their_edges() -> None:
    edge = injector(large_threshold_cents=99_999, small_amount_cents=2)
    small, large = (decode(value) for _key, value in edge.card_test().records)
    assert (small.amount, large.amount) == (0.01, 1000.0)


def test_a_command_line_round_trips() -> None:
    command = Command(BURST, 6, above_cents=80_000, under_cents=50)
    assert command.line() == "burst 6 above=800.00 under=0.50"
    assert parse_command(command.line()) == command
    assert Command(CARD_TEST).line() == "cardtest"


def test_thresholds_sent_with_a_command_replace_the_producer_s_own() -> None:
    # A monitor following a new rules version (large threshold 800, small amount 5 RON) asks for it;
    # the producer's own are 500 and 1.
    burst = injector().serve(Command(BURST, 20, above_cents=80_000))
    assert all(800.0 < decode(value).amount for _key, value in burst.records)
    tests = [injector().serve(Command(CARD_TEST, above_cents=80_000, under_cents=500)) for _ in range(20)]
    pairs = [tuple(decode(value) for _key, value in test.records) for test in tests]
    assert all(0 < small.amount < 5.0 and large.amount > 800.0 for small, large in pairs)
    assert max(small.amount for small, _large in pairs) >= 1.0  # the new small amount, not the old one


def test_injected_records_continue_the_run_s_ids_and_leave_the_seeded_draws_alone() -> None:
    plain, injected = TransactionGenerator(seed=3), TransactionGenerator(seed=3)
    first = plain.transactions(5)
    mixed = injected.transactions(2)
    burst = [decode(v) for _k, v in injector(injected).burst(3).records]
    mixed += injected.transactions(3)
    strip = [(t.account_id, t.merchant, t.amount) for t in first]
    assert [(t.account_id, t.merchant, t.amount) for t in mixed] == strip
    ids = [t.tx_id for t in mixed[:2] + burst + mixed[2:]]
    assert [int(i.rsplit("-", 1)[1]) for i in ids] == list(range(1, 9))
    assert len({i.rsplit("-", 1)[0] for i in ids}) == 1


def test_the_reader_queues_lines_and_answers_bad_ones_with_an_error() -> None:
    reader = CommandReader(io.StringIO("burst 2\nfly\n\ncardtest\n"), injector()).start()
    reader.thread.join(5)
    injections = reader.take()
    assert [i.reply.split()[0] for i in injections] == ["burst", "error", "cardtest"]
    assert "unknown command 'fly'" in injections[1].reply and injections[1].records == []
    assert reader.take() == []


def test_publish_produces_injections_at_once_and_prints_each_reply(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = FakeClock()
    producer = FakeProducer(clock)
    generator = TransactionGenerator(seed=1)
    reader = CommandReader(io.StringIO("burst 4\ncardtest\n"), injector(generator)).start()
    reader.thread.join(5)
    stop = threading.Event()
    served: list[int] = []

    def take() -> list:
        injections = reader.take()
        served.append(len(injections))
        if len(served) == 3:
            stop.set()
        return injections

    result = publish(producer, generator, "t", rate=10.0, count=None, stop=stop, clock=clock,
                     injections=take)
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["burst", "cardtest"]
    accounts = {words(line)["account"] for line in out}
    txs = [decode(value) for _topic, _key, value in producer.produced]
    assert len([tx for tx in txs if tx.account_id in accounts and not 1 <= tx.amount <= 500]) >= 6
    # Outside the schedule: 6 injected records on top of the paced ones, all counted and acknowledged.
    assert result.counts.produced == len(producer.produced) == result.counts.acknowledged
    assert len(producer.produced) - 6 <= 2  # 10/s for the loop's few ticks


def test_the_command_line_reads_commands_only_when_asked() -> None:
    from producer.cli import build_parser

    args = build_parser().parse_args(["-b", "127.0.0.1:1"])
    assert not args.commands and args.large_threshold == 500.0
    args = build_parser().parse_args(["-b", "127.0.0.1:1", "--commands", "--large-threshold", "400"])
    assert args.commands and args.large_threshold == 400.0


def test_the_reader_ends_at_end_of_input() -> None:
    reader = CommandReader(io.StringIO(""), injector()).start()
    wait_until(lambda: not reader.thread.is_alive(), 5, "the reader to end at end of input")
