"""Benchmarks of txmon's parts against reference tools (run as `python -m bench.NAME`; not tests)."""
