"""What the benchmarks share: latency summaries, question files, JSON output and log-log plots."""

from __future__ import annotations

import json
import resource
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def latency_stats(values: Sequence[float], digits: int = 2) -> dict[str, float | None]:
    """Median and p95 (nearest rank) in milliseconds; None for no values."""
    if not values:
        return {"median_ms": None, "p95_ms": None}
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), digits),
        "p95_ms": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], digits),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def questions_from(path: Path) -> list[str]:
    """The "question" field of every line of a JSONL file."""
    return [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_json(data: Any, out: Path | None) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def loglog_figure(panels: Sequence[tuple[str, Sequence[tuple[str, Sequence[float], Sequence[float]]]]], path: Path):
    """One log-log panel per (title, [(label, sizes, values)]), side by side, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 4))
    for ax, (title, lines) in zip(axes, panels, strict=True):
        for label, sizes, values in lines:
            ax.plot(sizes, [max(v, 1e-3) for v in values], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("chunks")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
