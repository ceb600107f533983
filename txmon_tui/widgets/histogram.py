"""Histograms of flagged amounts drawn with plotext from bins the model keeps (never plotext's hist)."""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot


def ticks_for(low: float, high: float, most: int = 6) -> list[float]:
    """Round tick positions from `low` to `high` (both included), at most `most` of them."""
    span = high - low
    step = next((s for s in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000) if span / s <= most - 1),
                span / (most - 1))
    ticks = [low]
    while ticks[-1] + step < high - step / 2:
        ticks.append(ticks[-1] + step)
    return [*ticks, high]


class AmountsPlot(PlotextPlot):
    """Bars of binned amounts with the thresholds as vertical lines.

    A plotext redraw costs ~30 ms, so new data only marks the plot stale; `replot` (called on the app's
    ~1 Hz clock) redraws only stale plots.
    """

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self._title = title
        self._data: tuple[tuple[float, ...], tuple[int, ...], tuple[float, ...], str] | None = None
        self._stale = False
        self.draws = 0
        self.drawn_counts: tuple[int, ...] = ()  # the counts of the last draw

    def set_bins(self, edges: Sequence[float], counts: Sequence[int], thresholds: Sequence[float],
                 note: str = "") -> None:
        """Take new bins (len(edges) == len(counts) + 1); the plot is redrawn at the next `replot`."""
        data = (tuple(edges), tuple(counts), tuple(thresholds), note)
        if data != self._data:
            self._data = data
            self._stale = True

    def replot(self) -> bool:
        """Redraw if the bins changed since the last draw; return whether it drew."""
        if not self._stale or self._data is None:
            return False
        self._stale = False
        edges, counts, thresholds, note = self._data
        self.drawn_counts = counts
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        title = f"{self._title} · {note}" if note else self._title
        plt.title(title)
        if len(edges) >= 2 and counts:
            centers = [(low + high) / 2 for low, high in zip(edges, edges[1:], strict=False)]
            plt.bar(centers, list(counts), width=0.8, marker="hd")
            # One empty bin of margin on each side, so the threshold lines at the edges stay visible.
            width = edges[1] - edges[0]
            plt.xlim(edges[0] - width, edges[-1] + width)
            # Our own ticks: plotext's choice varies from draw to draw; the last bin also holds the overflow.
            ticks = ticks_for(edges[0], edges[-1])
            plt.xticks(ticks, [f"{t:g}" for t in ticks[:-1]] + [f"{ticks[-1]:g}+"])
        for threshold in thresholds:
            plt.vline(threshold, "red")
        plt.xlabel("amount")
        self.draws += 1
        self.refresh()
        return True
