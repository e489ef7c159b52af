"""Tests of the Java client example, compiled offline and run against a live server."""
