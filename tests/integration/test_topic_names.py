"""A cluster's own topic names: the monitor, the generator and the Spark job all use the configured ones."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from tests.support.kafka import end_offsets
from tests.support.waiting import wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.topics import ALL, ensure_topics

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def existing_ends(bootstrap: str, names: tuple[str, ...]) -> dict[str, int]:
    """The summed end offsets of the topics that exist among `names`."""
    ends = {name: end_offsets(bootstrap, name) for name in names}
    return {name: sum(found.values()) for name, found in ends.items() if found}


def test_the_whole_pipeline_runs_on_configured_topic_names(broker: EmbeddedBroker, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    names = {"transactions": f"pay.tx.{run}", "alerts": f"pay.alerts.{run}",
             "dead_letters": f"pay.dlq.{run}", "metrics": f"pay.metrics.{run}"}
    settings = tmp_path / "txmon.toml"
    settings.write_text("[topics]\n" + "".join(f'{key} = "{name}"\n' for key, name in names.items())
                        + "[monitor]\nwith_producer = true\nwith_spark = true\n")
    ensure_topics({"bootstrap.servers": broker.bootstrap})  # the default names exist, and must not grow
    defaults_before = wait_until(lambda: len(found := existing_ends(broker.bootstrap, ALL)) == 4 and found,
                                 30, "the default topics in the metadata")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TXMON_")}, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "txmon_tui", "-b", broker.bootstrap, "--settings", str(settings), "--headless",
         "--duration", "20", "--rate", "50", "--seed", "3", "--data-dir", str(tmp_path / "d")],
        env=env, capture_output=True, text=True, timeout=600)
    # 3 (stalled) is a health judgement, e.g. Spark behind on a busy machine: what matters here is
    # where the records went, checked below; 4 (could not start) or 1 would be a failure.
    assert result.returncode in (0, 3), result.stderr[-3000:]
    summary = orjson.loads(result.stdout)
    assert summary["produced"] > 0 and summary["processed"] > 0 and summary["alerts"] > 0, summary
    assert "nothing was produced" not in summary["stalled_because"], summary
    assert "transactions were produced but Spark processed none" not in summary["stalled_because"], summary
    grown = existing_ends(broker.bootstrap, tuple(names.values()))
    assert grown[names["transactions"]] > 0 and grown[names["alerts"]] > 0 and grown[names["metrics"]] > 0
    assert existing_ends(broker.bootstrap, ALL) == defaults_before  # nothing went to the default names
