"""The parts of benches/compare.py: processes (start, stop by PID, /proc
figures), load (wrk and the fixed-rate generator), one module per group of
scenarios (each measures and prints its own table), and report (medians,
ratios, the issue's targets)."""
