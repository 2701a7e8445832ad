"""What the reports show: figures (sample grids, process strips, line charts) and the comparison tables."""
