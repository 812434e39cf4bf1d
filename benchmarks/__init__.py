"""Side-by-side benchmarks: skycut against astrocut 1.4.0 and against the disk.

Run ``python -m benchmarks`` (all cases) or ``python -m benchmarks CASE ... [--quick]``.
"""
