"""Benchmarks of js7certctl as whole processes on generated data: ``python -m benchmarks``.

Not part of the product; see benchmarks/README.md.
"""
