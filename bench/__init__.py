"""Benchmarks: each compares dspyops with a baseline measured in the same run and prints the
ratio. Nothing here asserts on time; `make bench` runs them all (see BENCHMARKS.md)."""
