"""Batch evaluation on FEA benchmarks: adapters (benchmarks/), metrics, the resumable runner, reports."""
