"""The publish loop against a fake producer and a fake clock: pacing, back-pressure, failures, stopping."""

from __future__ import annotations

import io
import threading

import pytest

from producer.generator import TransactionGenerator
from producer.publish import publish
from tests.support.fake_producer import FakeClock, FakeProducer
from txmon_core.records.transaction import decode


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def run(producer: FakeProducer, clock: FakeClock, **kwargs: object) -> object:
    options: dict[str, object] = {"rate": None, "count": None, "stop": threading.Event(), "clock": clock}
    options.update(kwargs)
    return publish(producer, TransactionGenerator(seed=1), "t", **options)  # type: ignore[arg-type]


def test_count_produces_exactly_n_all_acknowledged(clock: FakeClock) -> None:
    producer = FakeProducer(clock)
    result = run(producer, clock, count=5_000)
    assert len(producer.produced) == 5_000
    assert result.counts.produced == result.counts.acknowledged == 5_000
    assert result.counts.failed == 0 and not result.stopped
    assert {topic for topic, _, _ in producer.produced} == {"t"}
    assert len({v for _, _, v in producer.produced}) == 5_000
    assert result.summary().startswith("producer finished: produced=5000 acknowledged=5000 failed=0 ")


@pytest.mark.parametrize("rate", [100.0, 1_000.0, 50_000.0])
def test_rate_is_paced_against_the_clock(clock: FakeClock, rate: float) -> None:
    producer = FakeProducer(clock)
    count = int(rate * 2)
    result = run(producer, clock, rate=rate, count=count)
    assert len(producer.produced) == count
    assert result.rate == pytest.approx(rate, rel=0.05)
    # Waits are never shorter than librdkafka's millisecond resolution: no busy spinning.
    assert min(w for w in producer.waits if w > 0) >= 0.002


def test_slow_rates_wait_in_short_slices_so_signals_are_seen(clock: FakeClock) -> None:
    producer = FakeProducer(clock)
    result = run(producer, clock, rate=0.5, count=3)
    assert result.elapsed == pytest.approx(4.0, abs=0.2)
    assert max(producer.waits) <= 0.1


def test_full_queue_is_waited_out_never_dropped(clock: FakeClock) -> None:
    producer = FakeProducer(clock, capacity=100)
    result = run(producer, clock, count=3_000)
    assert producer.refused > 0
    assert len(producer.produced) == 3_000
    ids = [decode(v).tx_id for _, _, v in producer.produced]
    assert len(set(ids)) == 3_000
    assert ids == sorted(ids)  # retried in order, none skipped
    assert result.counts.acknowledged == 3_000


def test_failed_deliveries_are_counted(clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    producer = FakeProducer(clock, fail_every=10)
    result = run(producer, clock, count=1_000)
    assert (result.counts.failed, result.counts.acknowledged) == (100, 900)
    assert result.counts.first_error == "Broker: Not enough in-sync replicas"
    # One line per kind of error, not one per record.
    assert capsys.readouterr().err.count("delivery failed") == 1


def test_stop_ends_the_run_and_flushes(clock: FakeClock) -> None:
    stop = threading.Event()
    producer = FakeProducer(clock, on_produce=lambda n: stop.set() if n == 1_234 else None)
    result = run(producer, clock, rate=10_000.0, stop=stop)
    assert result.stopped
    assert 1_234 <= result.counts.produced <= 1_234 + 2_000  # stops within one batch
    assert result.counts.acknowledged == result.counts.produced == len(producer.produced)
    assert result.summary().startswith(f"producer stopped: produced={result.counts.produced} ")


def test_flush_after_stop_is_bounded_and_counts_the_undelivered(clock: FakeClock) -> None:
    stop = threading.Event()
    producer = FakeProducer(clock, deliver=False, on_produce=lambda n: stop.set() if n == 500 else None)
    started = clock()
    result = run(producer, clock, rate=1_000.0, stop=stop, flush_timeout=5.0)
    assert clock() - started < 5.0 + 2.0
    assert result.counts.undelivered == result.counts.produced > 0
    assert result.counts.failed == result.counts.produced and result.counts.acknowledged == 0


def test_a_second_signal_cuts_the_flush_short(clock: FakeClock) -> None:
    stop, force = threading.Event(), threading.Event()
    stop.set()
    force.set()
    producer = FakeProducer(clock, deliver=False)
    result = run(producer, clock, rate=1_000.0, stop=stop, force=force, flush_timeout=30.0)
    assert result.counts.produced == 0
    assert clock() - 1_000.0 < 1.0


def test_ack_log_gets_every_acknowledged_tx_id_once(clock: FakeClock) -> None:
    log = io.BytesIO()
    producer = FakeProducer(clock, fail_every=7)
    result = run(producer, clock, count=700, ack_log=log)
    lines = log.getvalue().decode().splitlines()
    assert len(lines) == len(set(lines)) == result.counts.acknowledged == 600
    failed = {decode(v).tx_id for _, _, v in producer.produced[6::7]}
    assert not failed & set(lines)
