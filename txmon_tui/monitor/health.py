"""Pipeline health, as pure functions of the monitor's numbers: the funnel and plain-language warnings."""

from __future__ import annotations

from dataclasses import dataclass

from txmon_tui.supervise.children import ProcState


@dataclass(frozen=True)
class HealthRules:
    """How long a symptom must last before it is a warning."""

    no_input_after: float = 10.0  # producing, yet Spark read nothing for this long
    # A fresh job's first micro-batch plans and compiles its queries: measured 10-11 s on 2 busy cores.
    first_batch_grace: float = 30.0
    lagging_batches: int = 3  # consecutive batches with input rate above processed rate
    lag_margin: float = 1.05  # input must exceed processed by 5 %: equal rates are noise, not lag
    parquet_stale_after: float = 60.0  # flagged rows arrive but no Parquet batch for this long
    broker_unreachable_after: float = 5.0


@dataclass(frozen=True)
class ProcessHealth:
    """What the rules need to know about one supervised process."""

    state: ProcState
    exit: str | None = None  # e.g. "code 1" or "killed by SIGKILL"
    last_error: str | None = None


@dataclass(frozen=True)
class HealthInputs:
    """The numbers the rules look at; times are wall-clock seconds like `now`."""

    now: float
    producing_since: float | None = None  # produced rate > 0 continuously since then; None = not producing
    last_input_at: float | None = None  # newest Spark batch with input rows
    lagging_batches: int = 0
    input_rate: float = 0.0
    processed_rate: float = 0.0
    backlog: int | None = None
    last_flagged_at: float | None = None  # newest alerts-query batch with flagged rows
    last_parquet_at: float | None = None  # newest Parquet batch with rows
    watching_since: float = 0.0  # when the monitor (or the Spark job) started watching
    broker_unreachable_since: float | None = None
    brokers: int | None = None  # brokers in the cluster's metadata now
    brokers_seen: int | None = None  # the most seen at once since the monitor started
    broker: ProcessHealth | None = None  # None: not supervised here
    producer: ProcessHealth | None = None
    spark: ProcessHealth | None = None


@dataclass(frozen=True)
class FunnelStage:
    """One stage of produced → processed → flagged → alerts → Parquet rows."""

    name: str
    count: int
    share: float | None  # count / previous stage's count, None for the first or when that is 0


def funnel(produced: int, processed: int, flagged: int, alerts: int, parquet_rows: int) -> list[FunnelStage]:
    """The funnel stages with each one's share of the previous."""
    stages = [("produced", produced), ("processed", processed), ("flagged", flagged), ("alerts", alerts),
              ("Parquet rows", parquet_rows)]
    result = []
    previous: int | None = None
    for name, count in stages:
        share = count / previous if previous else None
        result.append(FunnelStage(name, count, share))
        previous = count
    return result


def _exited(name: str, process: ProcessHealth | None) -> str | None:
    if process is None or process.state is not ProcState.FAILED:
        return None
    detail = f" ({process.exit})" if process.exit else ""
    error = f": {process.last_error}" if process.last_error else ""
    return f"{name} exited{detail}{error}"


def _age(now: float, since: float) -> str:
    return f"{max(now - since, 0):.0f} s"


def warnings(inputs: HealthInputs, rules: HealthRules = HealthRules()) -> list[str]:  # noqa: B008 - frozen
    """Plain-language warnings for whatever looks stalled or broken right now, most severe first."""
    now = inputs.now
    found: list[str] = []
    if inputs.broker_unreachable_since is not None and (
        now - inputs.broker_unreachable_since >= rules.broker_unreachable_after
    ):
        found.append(f"Kafka broker unreachable for {_age(now, inputs.broker_unreachable_since)}")
    elif inputs.brokers is not None and inputs.brokers_seen and inputs.brokers < inputs.brokers_seen:
        found.append(f"Only {inputs.brokers} of {inputs.brokers_seen} Kafka brokers are up")
    for name, process in (("Kafka broker", inputs.broker), ("Spark job", inputs.spark),
                          ("Producer", inputs.producer)):
        if message := _exited(name, process):
            found.append(message)

    spark_idle_by_choice = inputs.spark is not None and inputs.spark.state is not ProcState.RUNNING
    if inputs.producing_since is not None and not spark_idle_by_choice:
        since = max(inputs.producing_since, inputs.last_input_at or inputs.producing_since)
        limit = rules.no_input_after if inputs.last_input_at is not None else rules.first_batch_grace
        if now - since >= max(limit, rules.no_input_after):
            found.append(f"Transactions are being produced but Spark has read none for {_age(now, since)}")

    if inputs.lagging_batches >= rules.lagging_batches:
        backlog = f"; backlog {inputs.backlog:,} transactions" if inputs.backlog is not None else ""
        found.append(
            f"Spark is falling behind: input {inputs.input_rate:,.0f} rows/s above processed "
            f"{inputs.processed_rate:,.0f} rows/s for {inputs.lagging_batches} batches{backlog}"
        )

    if inputs.last_flagged_at is not None and now - inputs.last_flagged_at < rules.parquet_stale_after:
        since = max(inputs.last_parquet_at or inputs.watching_since, inputs.watching_since)
        if now - since >= rules.parquet_stale_after:
            found.append(f"No Parquet commit for {_age(now, since)} while flagged transactions keep arriving")
    return found
