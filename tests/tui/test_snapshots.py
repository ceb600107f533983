"""Screenshots of deterministic states at 80x24 (ssh) and 160x48: no clocks, pids or brokers in them."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from spark_app.formats import LEVEL_ALERT, LEVEL_LARGE, QUERY_ALERTS, QUERY_PARQUET, Alert, BatchMetrics
from tests.tui.conftest import iso
from txmon_tui.app import MonitorApp, create_app
from txmon_tui.messages import RecordsReceived
from txmon_tui.monitor.tail import TailBatch
from txmon_tui.supervise.config import PipelineConfig

pytestmark = pytest.mark.tui
T0 = 1_795_000_000.0  # a fixed wall clock: rates, latencies and sparklines come out the same every run
MERCHANTS = ("Mega Image", "Lidl", "eMAG", "Carrefour Market", "Altex", "OMV Petrom")


def alerts() -> list[Alert]:
    """Forty flagged transactions with amounts spread over the bins and latencies under a second."""
    found = []
    for i in range(40):
        amount = 500.01 + (i * 137.77) % 560
        level = LEVEL_ALERT if amount > 900 else LEVEL_LARGE
        found.append(Alert(f"pf0c2ae7eca22-{i:012d}", f"RO49RZBR00000{i % 7:011d}", MERCHANTS[i % 6],
                           round(amount, 2), "RON", iso(T0 - 2 + i * 0.03), level,
                           "amount>900" if level == LEVEL_ALERT else "amount>500", iso(T0 - 0.5)))
    return found


def metrics() -> list[BatchMetrics]:
    """Two batches of the alerts query and one Parquet batch."""
    return [BatchMetrics(QUERY_ALERTS, 7, iso(T0 - 1), 1500, 1480.0, 2950.5, 508, {"0": 1500}, 31, 9, 2),
            BatchMetrics(QUERY_ALERTS, 8, iso(T0), 1000, 1010.0, 3120.0, 320, {"0": 2500}, 25, 6, 0),
            BatchMetrics(QUERY_PARQUET, 3, iso(T0), 0, 0.0, 0.0, 870, {"0": 2500}, 40, 0, 0)]


def steady_app(tmp_path: Path) -> MonitorApp:
    """The monitor without a pipeline, its clock stopped at T0."""
    app = create_app(PipelineConfig(data_dir=tmp_path), supervise=False, clock=lambda: T0)
    app.animation_level = "none"  # the tab underline would be caught mid-slide
    return app


async def feed_known_records(pilot: Pilot[object]) -> None:
    """Deliver the known batch as the tail worker would, then repaint and replot once."""
    app = pilot.app
    assert isinstance(app, MonitorApp)
    app.post_message(RecordsReceived([TailBatch(alerts=alerts(), metrics=metrics(), received_at=T0)]))
    await pilot.pause()
    app.repaint()
    app.replot()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_monitor_with_alerts(snap_compare: object, tmp_path: Path, size: tuple[int, int]) -> None:
    assert snap_compare(steady_app(tmp_path), terminal_size=size, run_before=feed_known_records)  # type: ignore[operator]


def test_histogram_panel_at_80x24(snap_compare: object, tmp_path: Path) -> None:
    assert snap_compare(steady_app(tmp_path), terminal_size=(80, 24), press=["3"],  # type: ignore[operator]
                        run_before=feed_known_records)


def test_help_at_80x24(snap_compare: object, tmp_path: Path) -> None:
    assert snap_compare(steady_app(tmp_path), terminal_size=(80, 24), press=["h"])  # type: ignore[operator]


def test_grouped_feed_at_80x24(snap_compare: object, tmp_path: Path) -> None:
    async def grouped(pilot: Pilot[object]) -> None:
        await feed_known_records(pilot)
        await pilot.press("g")
        await pilot.pause()

    assert snap_compare(steady_app(tmp_path), terminal_size=(80, 24), run_before=grouped)  # type: ignore[operator]
