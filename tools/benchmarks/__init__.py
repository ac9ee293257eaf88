"""Benchmark scripts: each prints its numbers; the README quotes them with the command."""
