"""Benchmarks at scale: `make bench` / `python -m bench`.

Each benchmark runs in its own process (`python -m bench.worker NAME --db sqlite|postgres`)
against a fresh database, so Django's settings, memory figures and DB connections of one never
leak into another. `bench.run` starts them, prints one table and writes bench/results/latest.json.
"""
