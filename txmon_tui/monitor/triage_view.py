"""What triage changes in the monitor's views: marks in the feed, silenced rows hidden or dimmed, the
silences for the Health panel. Pure functions of the model's rows and a TriageState; no Textual."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from txmon_core.triage import TriageState, is_silenced, silence_line
from txmon_tui.monitor.feed import FeedRow

ACKED, NOTED, SILENCED = "✓", "✎", "◌"  # marks before the tx id: acknowledged, has a note, silenced
# Rows asked of the model so that enough remain once silenced rows are hidden.
OVERSCAN = 4


@dataclass(frozen=True, slots=True)
class TriagedRow:
    """A feed row with its triage marks."""

    row: FeedRow
    mark: str  # e.g. "✓✎"; empty when untouched
    silenced: bool


@dataclass(frozen=True, slots=True)
class TriagedFeed:
    """The rows to show, and how many silenced rows the feed holds (shown or not)."""

    rows: list[TriagedRow]
    silenced: int


def triage_feed(rows: Sequence[FeedRow], state: TriageState | None, now: float, show_silenced: bool,
                limit: int) -> TriagedFeed:
    """Mark each row; drop silenced ones unless `show_silenced`; at most `limit` rows."""
    if state is None:
        return TriagedFeed([TriagedRow(row, "", False) for row in rows[:limit]], 0)
    shown: list[TriagedRow] = []
    silenced = 0
    for row in rows:
        alert = row.alert
        quiet = is_silenced(alert, state, now)
        silenced += quiet
        if quiet and not show_silenced:
            continue
        if len(shown) < limit:
            mark = (ACKED if state.is_acked(alert) else "") + (NOTED if state.has_note(alert.tx_id) else "")
            shown.append(TriagedRow(row, mark + (SILENCED if quiet else ""), quiet))
    return TriagedFeed(shown, silenced)


def triage_status(feed: TriagedFeed, show_silenced: bool, active: int) -> str:
    """The feed status's triage part: silenced rows and whether they are shown (z toggles)."""
    if not active and not feed.silenced:
        return ""
    where = "dimmed" if show_silenced else "hidden"
    return f"{feed.silenced:,} silenced ({where}, z toggles) · {active} silence{'s' * (active != 1)} on"


def silence_lines(state: TriageState | None, now: float) -> list[str]:
    """Each active silence with its time left, the one ending first first."""
    if state is None:
        return []
    return [silence_line(silence, now) for silence in state.active_silences(now)]
