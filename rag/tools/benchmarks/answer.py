"""Answer latency with the configured LLM, cold start, and the chat server's memory.

- warm: every evaluation question through the answer chain in this process; time to first token and
  to full answer (median, p95) over the questions that reached the LLM (the evidence gate declines
  the others without a call).
- cold: `rag ask` in a fresh process, from its start to the printed answer (imports, model loading,
  retrieval, generation), twice: the first run also pays for reading the models from disk.
- server: `rag serve` in a fresh process, one question through its API, then its resident memory
  (current and peak, from /proc).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.core.stats import latency_stats, percentile
from rag.settings import REPO_ROOT, Settings
from rag.tools.benchmarks.common import questions_from, write_json

COLD_QUESTION = "Berapa lama Lavrov dan Kerry bertemu di Paris?"


def settings_args(settings: Settings) -> list[str]:
    """The command-line flags that give a `rag` subprocess this run's index, cache and threads."""
    return [
        "--index",
        str(settings.index_dir),
        "--cache-dir",
        str(settings.cache_dir),
        "--embed-backend",
        settings.embed_backend,
        "--llm-threads",
        str(settings.llm_threads),
    ]


def warm(settings: Settings) -> dict[str, Any]:
    from rag.pipeline import Pipeline

    questions = questions_from(REPO_ROOT / "eval" / "questions.jsonl")
    pipeline = Pipeline(settings)
    pipeline.ingest()
    answerer = pipeline.answerer()
    answerer.answer(questions[0])  # loads the LLM and fills the prompt cache's static prefix
    first, total, declined = [], [], 0
    for q in questions:
        timings = answerer.answer(q).timings
        if "first_token_ms" in timings:
            first.append(timings["first_token_ms"])
            total.append(timings["total_ms"])
        else:
            declined += 1
    return {
        "questions": len(questions),
        "llm_calls": len(first),
        "declined_before_llm": declined,
        "first_token": latency_stats(first, 1),
        "full_answer": latency_stats(total, 1),
    }


def cold(settings: Settings, runs: int = 2) -> list[dict[str, Any]]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "rag", "ask", COLD_QUESTION, "--json", *settings_args(settings)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"rag ask failed ({proc.returncode}): {proc.stderr[-2000:]}")
        answer = json.loads(proc.stdout)
        out.append({"process_start_to_answer_s": round(wall, 2), "timings": answer["timings"]})
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _memory_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}


def wait_listening(proc: subprocess.Popen, port: int, timeout_s: float = 300) -> None:
    """Until `rag serve` (``proc``) accepts connections on ``port``; its stderr in the error if it exits."""
    started = time.perf_counter()
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"rag serve exited ({proc.returncode}): {err[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"rag serve did not start listening within {timeout_s:.0f} s") from None
            time.sleep(0.5)


def server(settings: Settings) -> dict[str, Any]:
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "serve", "--no-ingest", "--port", str(port), *settings_args(settings)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        started = time.perf_counter()
        wait_listening(proc, port)
        ready_s = time.perf_counter() - started
        idle = _memory_mb(proc.pid)
        result = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(COLD_QUESTION, api_name="/ask")
        answered_s = time.perf_counter() - started
        loaded = _memory_mb(proc.pid)
        return {
            "listening_after_s": round(ready_s, 1),
            "first_answer_after_s": round(answered_s, 1),
            "memory_listening": idle,
            "memory_after_first_answer": loaded,
            "answer_declined": bool(result.get("declined")),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(settings: Settings, *, out: Path | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    result: dict[str, Any] = {"llm": settings.llm_model, "llm_threads": settings.llm_threads}
    result["warm"] = w = warm(settings)
    log(
        f"warm: {w['llm_calls']} LLM answers ({w['declined_before_llm']} declined before the LLM): first token "
        f"median {w['first_token']['median_ms']} ms p95 {w['first_token']['p95_ms']} ms; full answer median "
        f"{w['full_answer']['median_ms']} ms p95 {w['full_answer']['p95_ms']} ms"
    )
    result["cold"] = c = cold(settings)
    for i, r in enumerate(c, start=1):
        log(f"cold run {i}: process start to answer {r['process_start_to_answer_s']} s ({r['timings']})")
    result["server"] = s = server(settings)
    log(
        f"server: listening after {s['listening_after_s']} s, first answer after {s['first_answer_after_s']} s; "
        f"memory {s['memory_listening']['rss_mb']} MB listening, {s['memory_after_first_answer']['rss_mb']} MB "
        f"with the LLM loaded (peak {s['memory_after_first_answer']['peak_rss_mb']} MB)"
    )
    write_json(result, out)
    return result


# --- the prompt-size curve: new prompt tokens -> first token -> accuracy ---------------------------

# (context_budget_tokens, passage_tokens, k): the settings that decide how many new tokens a question
# puts in front of the model (the system prompt before them is read once and kept)
CURVE_POINTS = ((500, 100, 5), (350, 70, 5), (250, 50, 5), (200, 60, 3), (140, 45, 3), (100, 40, 2))


def curve(
    settings: Settings,
    points: tuple[tuple[int, int, int], ...] = CURVE_POINTS,
    *,
    answers: bool = False,
    eval_set: Path | None = None,
    split: str = "",
    out: Path | None = None,
    plot: Path | None = None,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Per point, over the questions of ``eval_set`` (only its ``split`` when given): the new prompt
    tokens (the user message; exact, no model needed), how many answerable questions have their gold
    evidence among the shown passages, and with ``answers`` the answers themselves, one at a time with
    one chat model: time to first token and to the full answer (medians over the questions that reached
    the model) and the share of correct answers."""
    import statistics

    from rag.core.choices import LLMBackend
    from rag.pipeline import Pipeline
    from rag.steps.answer.answerer import EventKind
    from rag.tools.evaluation.evalset import load_eval_set
    from rag.tools.evaluation.runner import run_answers

    base = Pipeline(settings)
    base.ingest()
    chat = base.chat_model().chat  # the engine itself, shared by every point (its queue is per pipeline)
    path = eval_set or REPO_ROOT / "eval" / "questions.jsonl"
    questions = [q for q in load_eval_set(path, base.index.documents) if not split or q.split == split]
    answerable = [q for q in questions if q.answerable]
    rows = []
    for budget, passage, k in points:
        pipeline = Pipeline(
            settings.replace(context_budget_tokens=budget, passage_tokens=passage, k=k),
            embedder=base.embedder,
            chat_models={LLMBackend.LOCAL: chat},
        )
        answerer = pipeline.answerer()
        new_tokens, shown, gold_shown = [], [], 0
        for q in questions:
            prepared = answerer.prepare(q.question)
            if prepared.gate.passed:
                new_tokens.append(answerer.count_tokens(prepared.messages[-1].text))
                shown.append(len(prepared.shown))
                gold_shown += q.answerable and any(q.is_relevant(h.chunk) for h in prepared.shown)
        row: dict[str, Any] = {
            "context_budget_tokens": budget,
            "passage_tokens": passage,
            "k": k,
            "questions": len(questions),
            "passed_gate": len(new_tokens),
            "new_prompt_tokens_median": statistics.median(new_tokens) if new_tokens else None,
            "new_prompt_tokens_p90": round(percentile(new_tokens, 0.9)) if new_tokens else None,
            "passages_shown_mean": round(statistics.mean(shown), 2) if shown else None,
            "gold_shown_answerable": round(gold_shown / len(answerable), 4) if answerable else None,
        }
        if answers:

            def answer(question: str, answerer=answerer):
                final = None
                for event in answerer.stream(question):
                    if event.kind == EventKind.ANSWER:
                        final = event.answer
                return final

            answer(questions[0].question)  # the system prompt is read here, as after any first question
            summary = run_answers(answer, questions)["summary"]
            row.update(
                {
                    "llm_calls": summary["llm_calls"],
                    "first_token_ms_median": summary["median_first_token_ms"],
                    "full_answer_ms_median": summary["median_total_ms"],
                    "full_answer_ms_p95": summary["p95_total_ms"],
                    "correct_answerable": summary["correct_answerable"],
                    "correct_declines": summary["correct_declines"],
                    "false_declines": summary["false_declines"],
                }
            )
        rows.append(row)
        log(", ".join(f"{key} {value}" for key, value in row.items()))
    write_json({"eval_set": str(path), "split": split, "llm_threads": settings.llm_threads, "points": rows}, out)
    if plot is not None:
        plot_curve(rows, plot)
    return rows


def plot_curve(rows: list[dict[str, Any]], path: Path) -> None:
    """Against new prompt tokens: the share of answerable questions whose evidence is shown (and, when
    measured, correct answers), and when measured the first token and full answer in seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["new_prompt_tokens_median"] or 0)
    x = [r["new_prompt_tokens_median"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(x, [100 * (r["gold_shown_answerable"] or 0) for r in rows], marker="o", label="gold evidence shown")
    if all("correct_answerable" in r for r in rows):
        ax.plot(x, [100 * (r["correct_answerable"] or 0) for r in rows], marker="^", label="correct answers")
    ax.set_ylim(0, 100)
    ax.set_xlabel("new prompt tokens per question (median)")
    ax.set_ylabel("answerable questions (%)")
    for r, xi in zip(rows, x, strict=True):
        label = f"{r['context_budget_tokens']}/{r['passage_tokens']}/k{r['k']}"
        ax.annotate(
            label,
            (xi, 100 * (r["gold_shown_answerable"] or 0)),
            textcoords="offset points",
            xytext=(-10, -14),
            fontsize=7,
        )
    handles, labels = ax.get_legend_handles_labels()
    if all(r.get("first_token_ms_median") for r in rows):
        right = ax.twinx()
        right.plot(
            x,
            [r["first_token_ms_median"] / 1000 for r in rows],
            marker="s",
            color="tab:red",
            label="first token (s, median)",
        )
        right.axhline(3, color="grey", linestyle=":", linewidth=1)
        right.set_ylabel("seconds")
        more = right.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize=8, loc="lower right")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
