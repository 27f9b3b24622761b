#!/usr/bin/env python
"""What one user's huge upload costs the others: answer latency while a one-line document is indexed.

A copy of corpus/ is indexed in a temporary folder; --questions answerable questions of
eval/questions.jsonl are answered with the configured LLM on the idle pipeline, then the next as many
(other questions: the server keeps each slot's last prompt) while the same pipeline ingests a
synthetic one-line .txt of --mb megabytes in a background thread (as the page
does after an upload). Prints, per phase, the medians of time to evidence and to the full answer, their
ratio, and how far the ingest got (load + chunk time, chunks embedded).

    .venv/bin/python scripts/bench_busy_ingest.py --mb 20 --questions 8
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout this script sits in, ahead of any installed copy
sys.path.insert(0, str(ROOT / "scripts"))

from bench_long_text import synthetic_line  # noqa: E402

from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.steps.answer.answerer import EventKind  # noqa: E402


def ask_all(pipeline: Pipeline, questions: list[str]) -> list[tuple[float, float]]:
    """(ms to evidence, ms to the checked answer) for each question, one after another."""
    answerer = pipeline.answerer()
    timings = []
    for question in questions:
        started = time.perf_counter()
        evidence_ms = 0.0
        for event in answerer.stream(question):
            if event.kind == EventKind.EVIDENCE:
                evidence_ms = (time.perf_counter() - started) * 1000
        timings.append((evidence_ms, (time.perf_counter() - started) * 1000))
    return timings


def medians(timings: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(t[0] for t in timings), statistics.median(t[1] for t in timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=20.0, help="size of the one-line document (MB)")
    parser.add_argument("--questions", type=int, default=8, help="answerable questions asked per phase")
    args = parser.parse_args()
    rows = [json.loads(line) for line in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    # each phase its own questions: llama-server keeps each slot's last prompt, so a question asked
    # again would skip reading its prompt and look faster than it is
    asked = [r["question"] for r in rows if r.get("answerable")]
    warm, idle_questions, busy_questions = asked[:1], asked[1 : 1 + args.questions], asked[1 + args.questions :]
    busy_questions = busy_questions[: args.questions]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(ROOT / "corpus", corpus)
        pipeline = Pipeline(Settings(corpus_dir=corpus, index_dir=Path(tmp) / "index").validated())
        pipeline.ingest()
        ask_all(pipeline, warm)  # load the models before timing
        idle = ask_all(pipeline, idle_questions)

        started = time.perf_counter()
        (corpus / "upload.txt").write_text(synthetic_line(int(args.mb * 1_000_000)), encoding="utf-8")
        first_progress: list[float] = []

        def progress(done: int, total: int) -> None:
            if not first_progress:
                first_progress.append(time.perf_counter() - started)

        worker = threading.Thread(target=lambda: pipeline.ingest(progress=progress), daemon=True)
        worker.start()
        time.sleep(1.0)  # the ingest is under way (reading, chunking or embedding) before the questions
        busy = ask_all(pipeline, busy_questions)
        still_indexing = worker.is_alive()
        done_total = pipeline.ingest_progress

    (idle_evidence, idle_total), (busy_evidence, busy_total) = medians(idle), medians(busy)
    print(
        f"{len(idle_questions)} questions per phase, LLM {pipeline.settings.llm_backend} ({pipeline.settings.llm_server})"
    )
    print(f"idle:       evidence {idle_evidence:8.0f} ms   full answer {idle_total:8.0f} ms   (medians)")
    print(f"indexing:   evidence {busy_evidence:8.0f} ms   full answer {busy_total:8.0f} ms   (medians)")
    print(f"ratio:      evidence {busy_evidence / idle_evidence:8.2f}x     full answer {busy_total / idle_total:8.2f}x")
    if first_progress:
        print(
            f"{args.mb:g} MB one-line document: read, normalised, chunked and a first batch embedded in {first_progress[0]:.1f} s"
        )
    if not still_indexing:
        print("the ingest had finished when the questions ended")
    elif done_total:
        print(f"the ingest was embedding when the questions ended: {done_total[0]:,} of {done_total[1]:,} chunks")
    else:
        print("the ingest was still reading and chunking when the questions ended")


if __name__ == "__main__":
    main()
