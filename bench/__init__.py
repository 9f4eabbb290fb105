"""Benchmarks of variant-proxy: scripts that print figures, never pass/fail (see README.md)."""
