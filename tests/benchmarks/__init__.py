"""Smoke tests of the benchmark scripts (they run and write their tables; nothing is timed)."""
