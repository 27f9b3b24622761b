"""Retrieval and answer evaluation: eval sets, metrics, the runner and its report."""
