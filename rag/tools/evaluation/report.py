"""Write an evaluation run: JSON (everything), Markdown (readable) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.tools.evaluation.metrics import KS


def write_report(out_dir: Path, run: dict[str, Any]) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    paths["json"].write_text(json.dumps(run, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    plots = _plots(out_dir, run)
    paths.update(plots)
    paths["markdown"].write_text(render_markdown(run, plots), encoding="utf-8")
    return paths


def render_markdown(run: dict[str, Any], plots: dict[str, Path] | None = None) -> str:
    lines = [
        f"# Evaluation: {run['name']}",
        "",
        f"- questions: {run['questions']} "
        f"({run['answerable']} answerable); corpus: {run['corpus']}; index: {run['index_dir']}",
        f"- embedder: {run['settings']['embedder']}; prompt version: {run.get('prompt_version', '-')}",
        f"- date: {run['created_at']}",
        "",
        "## Retrieval",
        "",
        "| configuration | " + " | ".join(f"R@{k}" for k in KS) + " | MRR@10 | nDCG@10 | median ms | p95 ms |",
        "|---|" + "---|" * (len(KS) + 4),
    ]
    for cfg in run["retrieval"]:
        m = cfg["metrics"]
        lines.append(
            f"| {cfg['name']} | "
            + " | ".join(f"{m[f'recall@{k}']:.3f}" for k in KS)
            + f" | {m['mrr@10']:.3f} | {m['ndcg@10']:.3f} | {cfg['latency_ms']['median']} | {cfg['latency_ms']['p95']} |"
        )
    lines += [
        "",
        "Recall@k: share of questions with a relevant passage in the top k. Relevant: overlaps the gold "
        "evidence (document-level for benchmarks). Latency: one search, warm, this machine.",
    ]
    for cfg in run["retrieval"]:
        if cfg.get("notes"):
            lines.append(f"- {cfg['name']}: {cfg['notes']}")
    misses = run.get("misses", [])
    if misses:
        lines += ["", "### Where retrieval fails (hybrid, first relevant passage not in the top 3)", ""]
        for miss in misses[:12]:
            lines.append(f"- `{miss['qid']}` {miss['question']} — first relevant rank: {miss['first_relevant_rank']}")
    for key, title in (("answers", "Answers"), ("answers_langchain", "Answers: the textbook LangChain chain")):
        if run.get(key):
            lines += _answers_markdown(title, run[key])
            if key == "answers" and run.get("replay"):
                r = run["replay"]
                lines += [
                    "",
                    f"Replayed: the replies recorded in `{r['report']}` checked again ({r['replayed']} replayed, "
                    f"{r['generated']} answered by the model for want of a recorded reply, {r['gated']} declined "
                    "by the gate); answer times are not measured in a replay.",
                ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{name}]({path.name})" for name, path in plots.items()]
    return "\n".join(lines) + "\n"


def _plots(out_dir: Path, run: dict[str, Any]) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}
    fig, ax = plt.subplots(figsize=(6, 4))
    for cfg in run["retrieval"]:
        ax.plot(KS, [cfg["metrics"][f"recall@{k}"] for k in KS], marker="o", label=cfg["name"])
    ax.set_xlabel("k")
    ax.set_ylabel("Recall@k")
    ax.set_xticks(list(KS))
    ax.set_title(f"Recall@k — {run['name']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    paths["recall_at_k"] = out_dir / "recall_at_k.png"
    fig.savefig(paths["recall_at_k"], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    data = [cfg["_latencies"] for cfg in run["retrieval"]]
    ax.boxplot(data, tick_labels=[cfg["name"] for cfg in run["retrieval"]], showfliers=False)
    ax.set_ylabel("search latency (ms)")
    ax.set_title("Search latency per configuration")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths["latency"] = out_dir / "latency.png"
    fig.savefig(paths["latency"], dpi=110)
    plt.close(fig)
    return paths


def _answers_markdown(title: str, answers: dict[str, Any]) -> list[str]:
    s = answers["summary"]
    lines = ["", f"## {title}", "", "| measure | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in s.items() if not isinstance(value, dict)]
    for group in ("by_class", "by_language"):
        if s.get(group):
            lines += [
                "",
                f"| {group.removeprefix('by_')} | questions | correct (answerable) | false declines | correct declines "
                "| model's reply right |",
                "|---|---|---|---|---|---|",
            ]
            for name, g in s[group].items():
                lines.append(
                    f"| {name} | {g['questions']} | {_pct(g['correct_answerable'])} | {_pct(g['false_declines'])} "
                    f"| {_pct(g['correct_declines'])} | {_pct(g.get('reply_correct_answerable'))} |"
                )
    lines += ["", "| id | lang | answerable | declined | correct | answer |", "|---|---|---|---|---|---|"]
    for r in answers["rows"]:
        text = r["answer"].replace("|", "\\|").replace("\n", " ")[:160]
        lines.append(
            f"| {r['qid']} | {r['language']} | {r['answerable']} | {r['declined']} | {r['correct']} | {text} |"
        )
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"
