"""Pictures and pages: sample grids, trajectories, the HTML run report."""
