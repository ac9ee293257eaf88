"""Stand-ins shared by the tests and the benchmark tools (tools/benchmarks): a fake Edge
service, a fault-injection backend, a tiny CSM checkpoint and a local Piper voice
repository. Importable as `tests.fakes.*` from the repository's root."""
