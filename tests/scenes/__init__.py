"""Scene renderers shared by tests and benchmarks (generated footage with known truth)."""
