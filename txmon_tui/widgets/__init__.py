"""The monitor's widgets and screens (Textual); they show what they are given and compute nothing.

Beside them, MonitorApp's base classes, one per group of keys (*_keys.py, operating.py), its Kafka
workers (session_workers.py) and its painting (painting.py, through present.py).
"""

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
