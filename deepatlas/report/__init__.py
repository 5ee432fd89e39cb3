"""Pictures and pages: sample grids, trajectories, the HTML run report."""

from deepatlas.report import html  # noqa: F401  (registers the `report` command)
