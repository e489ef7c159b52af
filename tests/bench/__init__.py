"""Tests of the benchmark tools (pure Python parts)."""
