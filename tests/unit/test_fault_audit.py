"""The fault suite's audit rules on made-up figures: large completeness, levels, alert repeats."""

from __future__ import annotations

from collections import Counter

from tests.support.audit import Audit, without_detected_at
from txmon_core.records.alert import LEVEL_ALERT, LEVEL_LARGE, LEVELS


def audit(large: Counter[str], alert: Counter[str], **extra: object) -> Audit:
    amounts = {"small": 12.0, "l-1": 500.01, "l-2": 900.0, "a-1": 900.01}
    alerts = {level: Counter() for level in LEVELS}
    alerts[LEVEL_LARGE].update(large)
    alerts[LEVEL_ALERT].update(alert)
    return Audit(set(amounts), Counter(list(amounts)), amounts, Counter(["l-1", "l-2", "a-1"]), alerts,
                 **extra)  # type: ignore[arg-type]


def test_a_complete_run_has_no_problems() -> None:
    done = audit(Counter(["l-1", "l-2"]), Counter(["a-1"]))
    assert done.problems() == []
    assert done.figures()["expected_large"] == 2 and done.figures()["alert_most_copies"] == 1


def test_a_missing_large_alert_is_a_problem() -> None:
    problems = audit(Counter(["l-1"]), Counter(["a-1"])).problems()
    assert any("without a large alert" in p and "l-2" in p for p in problems), problems


def test_an_alert_at_the_wrong_level_is_a_problem() -> None:
    problems = audit(Counter(["l-1", "l-2", "a-1"]), Counter(["a-1", "l-2"])).problems()
    assert any("at a level their amount does not give" in p for p in problems), problems


def test_repeats_are_counted_and_bounded_by_job_runs() -> None:
    repeated = audit(Counter(["l-1", "l-2", "l-2", "l-2"]), Counter(["a-1", "a-1"]), job_runs=2)
    assert repeated.figures()["alert_duplicates"] == 3 and repeated.most_copies == 3
    assert any("written 3 times by 2 job runs" in p for p in repeated.problems())
    assert audit(Counter(["l-1", "l-2", "l-2"]), Counter(["a-1"]), job_runs=2).problems() == []


def test_repeats_must_match_apart_from_detected_at() -> None:
    first = b'{"tx_id":"a-1","amount":900.01,"level":"alert","detected_at":"2026-12-05T10:00:00.000Z"}'
    again = first.replace(b"10:00:00.000", b"10:00:07.250")
    changed = again.replace(b"900.01", b"900.02")
    assert without_detected_at(first) == without_detected_at(again) != without_detected_at(changed)
    problems = audit(Counter(["l-1", "l-2"]), Counter(["a-1", "a-1"]), differing_repeats=["a-1"]).problems()
    assert any("differ from their first copy" in p for p in problems), problems
