"""Benchmarks: ``python -m bench [--only NAME]`` (``make bench``) runs every ``bench/bench_*.py``.

Each module exposes ``NAME = "..."`` and ``run() -> list[dict]`` of results shaped as
``{"name", "value", "unit", "target", "baseline", "ratio", "passed"}`` (see ``bench.common.result``).
"""
