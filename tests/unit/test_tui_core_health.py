"""Unit tests of the health rules and the funnel (pure functions of numbers and a clock)."""

from __future__ import annotations

import pytest

from txmon_tui.monitor.health import HealthInputs, HealthRules, ProcessHealth, funnel, warnings
from txmon_tui.supervise.children import ProcState

RUNNING = ProcessHealth(ProcState.RUNNING)


def test_all_quiet_is_no_warning() -> None:
    assert warnings(HealthInputs(now=100.0, spark=RUNNING, producer=RUNNING, broker=RUNNING)) == []


def test_producing_without_spark_input_warns_after_ten_seconds() -> None:
    inputs = HealthInputs(now=109.0, producing_since=100.0, last_input_at=99.0, spark=RUNNING)
    assert warnings(inputs) == []
    late = HealthInputs(now=111.0, producing_since=100.0, last_input_at=99.0, spark=RUNNING)
    assert warnings(late) == ["Transactions are being produced but Spark has read none for 11 s"]
    fed = HealthInputs(now=111.0, producing_since=100.0, last_input_at=105.0, spark=RUNNING)
    assert warnings(fed) == []
    stale = HealthInputs(now=120.0, producing_since=100.0, last_input_at=105.0)  # remote Spark: no process
    assert warnings(stale) == ["Transactions are being produced but Spark has read none for 15 s"]


def test_the_first_batch_gets_a_longer_grace() -> None:
    assert warnings(HealthInputs(now=125.0, producing_since=100.0, spark=RUNNING)) == []
    assert warnings(HealthInputs(now=131.0, producing_since=100.0, spark=RUNNING)) == [
        "Transactions are being produced but Spark has read none for 31 s"
    ]


def test_no_input_rule_is_quiet_while_spark_starts_or_was_stopped_by_the_user() -> None:
    for state in (ProcState.STARTING, ProcState.STOPPED, ProcState.STOPPING):
        inputs = HealthInputs(now=200.0, producing_since=100.0, spark=ProcessHealth(state))
        assert warnings(inputs) == []


def test_lagging_batches_warn_with_the_backlog() -> None:
    inputs = HealthInputs(now=1.0, lagging_batches=2, input_rate=9000, processed_rate=5000, backlog=1234)
    assert warnings(inputs) == []
    inputs = HealthInputs(now=1.0, lagging_batches=3, input_rate=9000, processed_rate=5000, backlog=12345)
    assert warnings(inputs) == [
        "Spark is falling behind: input 9,000 rows/s above processed 5,000 rows/s for 3 batches; "
        "backlog 12,345 transactions"
    ]


def test_parquet_not_committed_while_flagged_rows_arrive() -> None:
    rules = HealthRules(parquet_stale_after=60.0)
    fine = HealthInputs(now=200.0, last_flagged_at=199.0, last_parquet_at=150.0, watching_since=0.0)
    assert warnings(fine, rules) == []
    stale = HealthInputs(now=200.0, last_flagged_at=199.0, last_parquet_at=130.0, watching_since=0.0)
    assert warnings(stale, rules) == ["No Parquet commit for 70 s while flagged transactions keep arriving"]
    never = HealthInputs(now=200.0, last_flagged_at=199.0, watching_since=100.0)
    assert warnings(never, rules) == ["No Parquet commit for 100 s while flagged transactions keep arriving"]
    idle = HealthInputs(now=400.0, last_flagged_at=300.0, last_parquet_at=130.0, watching_since=0.0)
    assert warnings(idle, rules) == []  # nothing flagged lately: nothing to commit


def test_exited_processes_are_named_with_their_last_error() -> None:
    spark = ProcessHealth(ProcState.FAILED, "code 1", "py4j.protocol.Py4JJavaError: boom")
    producer = ProcessHealth(ProcState.FAILED, "killed by SIGKILL", None)
    found = warnings(HealthInputs(now=5.0, spark=spark, producer=producer))
    assert found == ["Spark job exited (code 1): py4j.protocol.Py4JJavaError: boom",
                     "Producer exited (killed by SIGKILL)"]


def test_broker_unreachable_after_a_grace_period() -> None:
    assert warnings(HealthInputs(now=103.0, broker_unreachable_since=100.0)) == []
    assert warnings(HealthInputs(now=107.0, broker_unreachable_since=100.0)) == [
        "Kafka broker unreachable for 7 s"
    ]


def test_funnel_shares() -> None:
    stages = funnel(produced=1000, processed=1000, flagged=100, alerts=100, parquet_rows=90)
    assert [s.name for s in stages] == ["produced", "processed", "flagged", "alerts", "Parquet rows"]
    assert [s.count for s in stages] == [1000, 1000, 100, 100, 90]
    assert stages[0].share is None
    assert stages[2].share == pytest.approx(0.1)
    assert stages[4].share == pytest.approx(0.9)
    assert funnel(0, 0, 0, 0, 0)[1].share is None


def test_fewer_brokers_than_seen_warns_until_they_are_back() -> None:
    assert warnings(HealthInputs(now=100.0, brokers=3, brokers_seen=3)) == []
    assert warnings(HealthInputs(now=100.0, brokers=2, brokers_seen=3)) == [
        "Only 2 of 3 Kafka brokers are up"
    ]
    # An unreachable cluster is the louder warning; the count is then stale, so it is not repeated.
    both = warnings(HealthInputs(now=100.0, brokers=2, brokers_seen=3, broker_unreachable_since=80.0))
    assert both == ["Kafka broker unreachable for 20 s"]
