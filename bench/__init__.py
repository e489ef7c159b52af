"""Benchmark suite (issue 7): corpus, load generator, engine and FunASR peer benchmarks, report."""
