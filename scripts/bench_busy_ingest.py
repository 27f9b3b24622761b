#!/usr/bin/env python
"""What one user's huge upload costs the others: answer latency while a one-line document is indexed.

A copy of corpus/ is indexed in a temporary folder; --questions answerable questions of
eval/questions.jsonl are answered with the configured LLM on the idle pipeline; then the same
pipeline ingests a synthetic one-line .txt of --mb megabytes in a background thread (as the page does
after an upload) and, every --every seconds for as long as that ingest runs, the next answerable
question is asked (each question once: the server keeps the prompts it read). Prints the medians of
time to evidence and to the full answer, idle and while indexing (by the stage the ingest was in
when asked), their ratios, and the ingest's own wall time.

    .venv/bin/python scripts/bench_busy_ingest.py --mb 20 --questions 8 --every 20
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
    parser.add_argument("--questions", type=int, default=8, help="answerable questions asked on the idle pipeline")
    parser.add_argument("--every", type=float, default=20.0, help="seconds between the questions asked while indexing")
    args = parser.parse_args()
    rows = [json.loads(line) for line in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    # every question asked once: llama-server keeps each slot's last prompt (and a host-memory cache of
    # earlier ones), so a question asked again would skip reading its prompt and look faster than it is
    asked = [r["question"] for r in rows if r.get("answerable")]
    warm, idle_questions, busy_questions = asked[:1], asked[1 : 1 + args.questions], asked[1 + args.questions :]
    busy: list[tuple[str, float, float]] = []  # (stage of the ingest when asked, ms to evidence, ms to answer)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(ROOT / "corpus", corpus)
        pipeline = Pipeline(Settings(corpus_dir=corpus, index_dir=Path(tmp) / "index").validated())
        pipeline.ingest()
        ask_all(pipeline, warm)  # load the models before timing
        idle = ask_all(pipeline, idle_questions)

        (corpus / "upload.txt").write_text(synthetic_line(int(args.mb * 1_000_000)), encoding="utf-8")
        marks: dict[str, float] = {}
        reports = []

        def progress(done: int, total: int) -> None:
            marks.setdefault("first_batch", time.perf_counter())

        failures: list[BaseException] = []

        def index_upload() -> None:
            marks["started"] = time.perf_counter()
            try:
                reports.append(pipeline.ingest(progress=progress))
            except BaseException as e:  # noqa: BLE001 - raised again in the main thread below
                failures.append(e)
            marks["ended"] = time.perf_counter()

        worker = threading.Thread(target=index_upload, daemon=True)
        worker.start()
        for question in busy_questions:  # one question every --every seconds, for as long as the ingest runs
            worker.join(timeout=args.every)
            if not worker.is_alive():
                break
            stage = "embedding" if pipeline.ingest_progress else "reading/chunking"
            busy.extend((stage, *t) for t in ask_all(pipeline, [question]))
        unanswered_s = time.perf_counter()
        worker.join()
        if failures:
            raise SystemExit(f"the ingest of the upload failed: {failures[0]!r}")
        embedded = reports[0].embedded_chunks if reports else 0
        tail_s = time.perf_counter() - unanswered_s

    idle_evidence, idle_total = medians(idle)
    print(f"LLM {pipeline.settings.llm_backend} ({pipeline.settings.llm_server}); {args.mb:g} MB one-line document")
    print(
        f"idle:              {len(idle):3} questions  evidence {idle_evidence:7.0f} ms  full answer {idle_total:7.0f} ms"
    )
    for stage in ("reading/chunking", "embedding", "all"):
        rows_ = [(e, t) for s_, e, t in busy if stage in (s_, "all")]
        if not rows_:
            print(f"while {stage + ':':17}   0 questions")
            continue
        evidence, total = medians(rows_)
        print(
            f"while {stage + ':':17} {len(rows_):3} questions  evidence {evidence:7.0f} ms  full answer {total:7.0f} ms"
            f"  ({evidence / idle_evidence:.2f}x, {total / idle_total:.2f}x idle; medians)"
        )
    ingest_s = marks["ended"] - marks["started"]
    chunked_s = marks.get("first_batch", marks["ended"]) - marks["started"]
    print(
        f"ingest of the upload: {ingest_s:.1f} s in all (read, normalised and chunked, first batch embedded: "
        f"{chunked_s:.1f} s), while answering the questions above"
        + (f"; {tail_s:.0f} s of it after the last question" if tail_s > 1 else "")
        + f"; {embedded:,} passages embedded"
    )


if __name__ == "__main__":
    main()
