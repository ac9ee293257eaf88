"""Developer tools: benchmark scripts (`tools/benchmarks`), run from the repository's
root as modules, e.g. `python -m tools.benchmarks.load_test`."""
