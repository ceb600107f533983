"""How numbers, times and series are written on screen (presentation only, no state)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from txmon_core.records.alert import LEVEL_ALERT, LEVEL_LARGE, LEVEL_PATTERN, LEVEL_VELOCITY

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"

# Each level has a word of at most 5 cells (reads without colour) and a colour of its own; account
# rules' alerts (velocity, pattern) are in capitals like ALERT, as they call for a look too.
LEVEL_MARKERS = {
    LEVEL_ALERT: ("ALERT", "bold red"),
    LEVEL_LARGE: ("large", "yellow"),
    LEVEL_VELOCITY: ("VELOC", "bold magenta"),
    LEVEL_PATTERN: ("PATRN", "bold cyan"),
}


def level_marker(level: str) -> Text:
    """The level told apart by a word (reads without colour) and by colour."""
    word, style = LEVEL_MARKERS.get(level, (level[:5], ""))
    return Text(word, style=style)


def sparkline(values: Sequence[float], width: int) -> str:
    """The last `width` values as block characters scaled to their own maximum."""
    tail = list(values)[-width:]
    if not tail:
        return ""
    top = max(tail)
    if top <= 0:
        return SPARK_BLOCKS[0] * len(tail)
    last = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[min(last, int(v / top * last + 0.5))] for v in tail)


def rate(value: float | None) -> str:
    """A per-second rate with a thousands separator, or a dash when unknown."""
    if value is None:
        return "–"
    return f"{value:,.0f}/s" if value >= 10 else f"{value:,.1f}/s"


def count(value: int | None) -> str:
    """A whole count with thousands separators, or a dash when unknown."""
    return "–" if value is None else f"{value:,}"


def seconds(value: float | None) -> str:
    """A latency or duration: ms below a second, else seconds; a dash when unknown."""
    if value is None:
        return "–"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


def uptime(value: float | None) -> str:
    """An uptime as 1h02m, 3m05s or 12s."""
    if value is None:
        return "–"
    whole = int(value)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def amount(value: float, currency: str = "") -> str:
    """An amount with two decimals and thousands separators."""
    text = f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def tail(text: str, width: int) -> str:
    """The end of `text` in `width` cells, marked with an ellipsis when shortened (ids differ at the end)."""
    return text if len(text) <= width else "…" + text[-(width - 1):]


def head(text: str, width: int) -> str:
    """The start of `text` in `width` cells, marked with an ellipsis when shortened."""
    return text if len(text) <= width else text[: width - 1] + "…"


def state_text(state: str) -> Text:
    """A process or step state, coloured by class (the word itself reads without colour)."""
    styles = {"running": "green", "done": "green", "starting": "yellow", "stopping": "yellow",
              "stopped": "dim", "skipped": "dim", "failed": "bold red", "pending": "dim", "waiting": "dim"}
    return Text(state, style=styles.get(state, ""))
