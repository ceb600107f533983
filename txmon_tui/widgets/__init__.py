"""The monitor's widgets and screens (Textual); they show what they are given and compute nothing."""

from txmon_tui.widgets.feed import AlertFeed, FeedLine
from txmon_tui.widgets.histogram import AmountsPlot
from txmon_tui.widgets.panels import (
    Gauge,
    HealthPanel,
    ProcessesPanel,
    ProcessLine,
    StartupView,
    StepLine,
    ThroughputPanel,
)
from txmon_tui.widgets.screens import DetailsScreen, FilterScreen, FilterValues, HelpScreen, LogScreen

__all__ = [
    "AlertFeed",
    "AmountsPlot",
    "DetailsScreen",
    "FeedLine",
    "FilterScreen",
    "FilterValues",
    "Gauge",
    "HealthPanel",
    "HelpScreen",
    "LogScreen",
    "ProcessLine",
    "ProcessesPanel",
    "StartupView",
    "StepLine",
    "ThroughputPanel",
]
