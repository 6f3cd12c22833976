"""The console: what Lambda's console shows for each function, from the router's own recent
history. Pure: the time series (`series`), the charts (`charts`, server-rendered SVG) and
the pages (`pages`); the router samples its metrics into a `History` and serves the pages.
"""

from klambda.console.series import History, Point, Sample, snapshot

__all__ = ["History", "Point", "Sample", "snapshot"]
