"""Speed benchmarks of the simulator, user models and agents (not installed).

`main` runs the parts (`python scripts/benchmark.py`, or
`playlist-sim benchmark` from a clone); `env`, `parts`, `read_logs` and
`serving` measure one thing each. Outside the installed packages, so the
packages carry no benchmark code; they may import every layer.
"""
