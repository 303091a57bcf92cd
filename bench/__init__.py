"""The benchmark harness of ``gmpflow bench``: fixed workloads that time the engine, outside the engine.

``engine/`` never imports this package at module level: ``gmpflow bench`` loads ``bench.cli`` when it runs.
"""
