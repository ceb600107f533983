"""`txmon-tui rules show|set|history` and `report --triage` against the real broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from confluent_kafka.admin import AdminClient

from spark_app.formats import PARQUET_DIR_NAME
from tests.conditions import wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.large_table import PARTITION_COLUMN, LargeTable
from txmon_core.topics import RULES, TRIAGE
from txmon_core.triage import SCOPE_ACCOUNT, iso
from txmon_core.triage_service import TriageService
from txmon_tui import cli

pytestmark = pytest.mark.integration


@pytest.fixture
def bootstrap(broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The broker with empty operators' topics, before and after (a silence or a rules version left
    behind would change what later tests on the session's broker deliver); the operator is `tester`."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    def empty() -> None:
        for topic in (RULES, TRIAGE):
            if topic in admin.list_topics(timeout=10).topics:
                admin.delete_topics([topic])[topic].result(10)
                wait_until(lambda t=topic: t not in admin.list_topics(timeout=10).topics, 20,
                           f"{topic} deleted")

    empty()
    monkeypatch.setenv("USER", "tester")
    monkeypatch.delenv("TXMON_SETTINGS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")  # no settings file: defaults
    yield broker.bootstrap
    empty()


def test_set_show_and_history(bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-b", bootstrap, "rules", "show"]) == 1
    assert cli.main(["rules", "set", "alert_threshold=800", "--reason", "more alerts", "-b", bootstrap]) == 0
    assert "published rules version 2: alert_threshold 900 → 800" in capsys.readouterr().out
    assert cli.main(["-b", bootstrap, "rules", "show"]) == 0
    shown = capsys.readouterr().out
    assert "rules version 2 by tester" in shown and "alert_threshold = 800" in shown
    assert cli.main(["-b", bootstrap, "rules", "set", "velocity_count=5", "--reason", "quieter",
                     "--author", "alice"]) == 0
    assert cli.main(["-b", bootstrap, "rules", "history"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-3].endswith("alice: velocity_count 3 → 5 — quieter")
    assert lines[-2].endswith("tester: alert_threshold 900 → 800 — more alerts")
    assert "settings file: initial — seeded from the settings file" in lines[-1]


@pytest.mark.parametrize(("words", "message"), [
    (["alert_threshold=400"],
     "txmon-tui: rules: alert_threshold: must be above large_threshold (500), got 400"),
    (["alert_threshold=lots"], "txmon-tui: rules: alert_threshold: must be a number, got 'lots'"),
    (["velocity_count=0"], "txmon-tui: rules: velocity_count: must be a whole number >= 1, got 0"),
])
def test_bad_rule_values_are_refused_with_one_line(bootstrap: str, capsys: pytest.CaptureFixture[str],
                                                   words: list[str], message: str) -> None:
    assert cli.main(["-b", bootstrap, "rules", "set", *words, "--reason", "try"]) == 2
    captured = capsys.readouterr()
    assert captured.err == message + "\n"
    assert cli.main(["-b", bootstrap, "rules", "history"]) in (0, 1)
    assert "alert_threshold 900 → 400" not in capsys.readouterr().out


def test_report_triage_prints_who_did_what_when_and_why(bootstrap: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-b", bootstrap, "report", "--triage"]) == 1
    capsys.readouterr()
    with TriageService({"bootstrap.servers": bootstrap}, "alice") as alice:
        assert alice.wait_caught_up(20)
        alice.silence(SCOPE_ACCOUNT, "RO49RZBR0000060012345678", 900, "card blocked")
        alice.note("p1-000000000001", "RO49RZBR0000060012345678", "customer called")
    assert cli.main(["-b", bootstrap, "rules", "set", "alert_threshold=850", "--reason", "tuning"]) == 0
    capsys.readouterr()
    assert cli.main(["-b", bootstrap, "report", "--triage"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "alice        silenced account RO49RZBR0000060012345678 until" in lines[0]
    assert lines[0].endswith("— card blocked")
    assert "noted on p1-000000000001: customer called" in lines[1]
    assert "rules v1" in lines[2] and "tester       rules v2: alert_threshold 900 → 850 — tuning" in lines[3]
    future = iso(time.time() + 3600)
    assert cli.main(["-b", bootstrap, "report", "--triage", "--since", future]) == 1


def test_report_draws_the_thresholds_of_the_rules_in_force(bootstrap: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    table = LargeTable(tmp_path / PARQUET_DIR_NAME)
    table.write(0, 0, pa.table({"tx_id": ["r1", "r2"], "account_id": ["RO49A", "RO49B"],
                                "merchant": ["m", "m"],
                                "amount": [650.0, 920.0], "currency": ["RON", "RON"],
                                "ts": ["2026-12-05T10:00:00.000Z"] * 2, "level": ["large", "alert"],
                                PARTITION_COLUMN: ["2026-12-05"] * 2}))
    report = ["report", "--data-dir", str(tmp_path)]
    assert cli.main(["-b", bootstrap, *report]) == 0  # no version yet: the flags' (defaults)
    assert "lines at 500 and 900" in capsys.readouterr().out
    # Reading the rules in force must not create their topic on the cluster.
    assert RULES not in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    assert cli.main(["-b", bootstrap, "rules", "set", "alert_threshold=800", "--reason", "more alerts"]) == 0
    capsys.readouterr()
    assert cli.main(["-b", bootstrap, *report]) == 0
    assert "lines at 500 and 800" in capsys.readouterr().out
    assert cli.main(["--alert-threshold", "950", *report]) == 0  # no broker named: the flags'
    assert "lines at 500 and 950" in capsys.readouterr().out
