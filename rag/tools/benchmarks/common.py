"""What the benchmarks share: peak memory, question files, JSON output and log-log plots
(latency statistics come from rag.core.stats, shared with the evaluation)."""

from __future__ import annotations

import json
import resource
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.core.questions import read_questions


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def questions_from(path: Path) -> list[str]:
    """The questions of a questions file (plain lines or JSONL with a "question" field)."""
    return list(read_questions(path))


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
