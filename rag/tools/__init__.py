"""Tools over the product: evaluation and benchmarks."""
