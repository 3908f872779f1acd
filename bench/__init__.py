"""Benchmarks against the real alternatives; see RESULTS.md."""
