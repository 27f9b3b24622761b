"""The benchmark scripts run end to end on tiny inputs (their figures come from `rag bench`)."""

import json
from pathlib import Path

import numpy as np

from rag.tools.benchmarks import ann


def test_ann_bench_rows_and_plot(tmp_path: Path):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = base[:8] + rng.normal(0, 0.05, size=(8, 32)).astype(np.float32)
    rows = ann.run(base, queries, [500, 1500], out=tmp_path / "ann.json", log=lambda _: None)
    assert {r["vectors"] for r in rows} == {500, 1500}
    assert len({r["index"] for r in rows}) == 3
    for r in rows:
        if r["index"] == "flat (exact)":
            assert r["recall@10_vs_exact"] == 1.0 and r["float_vectors_on_disk_mb"] == 0.0
        elif "rescoring" in r["index"]:
            assert r["recall@10_vs_exact"] >= 0.9 and r["float_vectors_on_disk_mb"] > 0
    assert json.loads((tmp_path / "ann.json").read_text()) == rows
    ann.plot(rows, tmp_path / "ann.png")
    assert (tmp_path / "ann.png").read_bytes().startswith(b"\x89PNG")


def test_load_bench_counts_the_cpu_of_a_process_tree_children_included():
    """`rag bench load` reports what the server's process tree and the clients used of the cores."""
    import subprocess
    import sys
    import time

    from rag.tools.benchmarks.load import tree_cpu_s, tree_rss_mb

    busy = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\ntime.sleep(30)"
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {busy!r}])"]
    )
    try:
        deadline = time.monotonic() + 20
        while tree_cpu_s(parent.pid) < 0.5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tree_cpu_s(parent.pid) >= 0.5  # the child's busy loop, counted through its parent
        assert tree_rss_mb(parent.pid) > 2 * 5  # two interpreters
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)])
        parent.kill()
        parent.wait()
