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

from rag.core.stats import latency_stats
from rag.settings import REPO_ROOT, Settings
from rag.tools.benchmarks.common import questions_from, write_json

COLD_QUESTION = "Berapa lama Lavrov dan Kerry bertemu di Paris?"


def _settings_args(settings: Settings) -> list[str]:
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
            [sys.executable, "-m", "rag", "ask", COLD_QUESTION, "--json", *_settings_args(settings)],
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


def _free_port() -> int:
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


def server(settings: Settings) -> dict[str, Any]:
    from gradio_client import Client

    port = _free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "serve", "--no-ingest", "--port", str(port), *_settings_args(settings)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        started = time.perf_counter()
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"rag serve exited ({proc.returncode}): {err[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.perf_counter() - started > 300:
                    raise RuntimeError("rag serve did not start listening within 300 s") from None
                time.sleep(0.5)
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
