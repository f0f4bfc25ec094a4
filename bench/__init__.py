"""Benchmarks of bird-etl against a client-side floor and a dlt baseline (issue 8); see bench/run.py."""
