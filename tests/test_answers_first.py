"""An ingest in the serving process embeds only while no answer is being generated (they share the
cores), and still moves on under a steady stream of questions."""

from __future__ import annotations

import ast
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from fakes import EchoChatModel
from test_ui import build_pipeline

import rag.pipeline

T = TypeVar("T")
NEW_ARTICLE = " ".join(
    f"Kalimat nomor {i} tentang pelabuhan baru di Makassar yang dibangun tahun ini." for i in range(60)
)


def _recording(pipeline) -> list[float]:
    """Times at which the pipeline's embedder embedded a batch of documents."""
    calls: list[float] = []
    embed = pipeline.embedder.embed_documents

    def recorded(texts):
        calls.append(time.monotonic())
        return embed(texts)

    pipeline.embedder.embed_documents = recorded
    return calls


def _held_back_by_an_answer(pipeline, work: Callable[[], T], calls: list[float], wait_s: float) -> tuple[T, float]:
    """``work()`` in a thread while an answer holds a generation slot for ``wait_s``: it must embed
    nothing meanwhile and still be running. Returns its result and when the slot was given back."""
    results: list[T] = []
    with pipeline.generation_queue.slot("an answer being generated"):
        worker = threading.Thread(target=lambda: results.append(work()))
        worker.start()
        time.sleep(wait_s)
        assert calls == [] and worker.is_alive()  # waiting before its first batch
        released = time.monotonic()
    worker.join(timeout=30)
    assert not worker.is_alive() and len(results) == 1
    return results[0], released


def test_an_ingest_waits_while_an_answer_is_generated(tmp_path: Path):
    pipeline = build_pipeline(tmp_path, EchoChatModel())
    (tmp_path / "corpus" / "makassar.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    calls = _recording(pipeline)
    report, released = _held_back_by_an_answer(pipeline, pipeline.ingest, calls, 1.5)  # chunked, then waiting
    assert report.written and report.embedded_chunks > 0
    assert calls and calls[0] >= released


def test_an_ingest_still_moves_on_when_questions_never_stop(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(rag.pipeline, "ANSWERS_FIRST_MAX_WAIT_S", 0.3)
    pipeline = build_pipeline(tmp_path, EchoChatModel())
    (tmp_path / "corpus" / "makassar.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    with pipeline.generation_queue.slot("answers all the time"):
        report = pipeline.ingest()  # returns although the slot is never given back
    assert report.written and report.embedded_chunks > 0


def test_a_background_ingest_runs_at_a_lower_priority_and_leaves_its_caller_as_it_was():
    from rag.pipeline import run_niced

    def nice_here() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = nice_here()
    assert run_niced(nice_here, 5) == min(19, before + 5)
    assert nice_here() == before

    def fails() -> None:
        raise ValueError("a damaged corpus")

    with pytest.raises(ValueError, match="damaged"):
        run_niced(fails, 5)


def test_passages_sentence_vectors_are_computed_ahead_answers_first(tmp_path: Path):
    """`rag serve` computes every passage's sentence vectors of a small index ahead of the questions
    (a question's evidence then waits for no embedding but its own query's), in batches that wait
    while an answer is generated; a larger index is left to be computed as passages are shown."""
    pipeline = build_pipeline(tmp_path, EchoChatModel(), passage_tokens=8)
    calls = _recording(pipeline)
    kept, _ = _held_back_by_an_answer(pipeline, pipeline.keep_passage_sentences, calls, 1.0)
    chunks = len(pipeline.index.chunks)
    assert kept == chunks and len(pipeline.sentence_vectors) == chunks and len(calls) == chunks  # a batch each
    prepared = pipeline.answerer().prepare("Siapa yang bertemu di Paris?")
    whole = {c.text for c in pipeline.index.chunks}
    assert prepared.gate.passed and any(h.chunk.text not in whole for h in prepared.shown)  # cut to a window
    assert len(calls) == chunks  # ... from the sentences kept ahead: nothing embedded for the question
    with pytest.MonkeyPatch.context() as m:
        m.setattr(rag.pipeline, "KEEP_SENTENCES_MAX_CHUNKS", chunks - 1)
        assert pipeline.keep_passage_sentences() == 0


def test_an_answerer_built_before_the_sentences_are_kept_reads_them_too(tmp_path: Path):
    """The page's first question builds its Answerer while the shared sentence vectors are still empty
    (and an empty one is falsy): it must read the very ones computed ahead, not an empty copy of its
    own, or every question under load embeds its passages' sentences while the cores generate."""
    pipeline = build_pipeline(tmp_path, EchoChatModel(), passage_tokens=8)
    answerer = pipeline.answerer()  # before anything is kept
    assert answerer.sentences is pipeline.sentence_vectors and len(pipeline.sentence_vectors) == 0
    calls = _recording(pipeline)
    assert pipeline.keep_passage_sentences() == len(pipeline.index.chunks)
    before = len(calls)
    prepared = answerer.prepare("Siapa yang bertemu di Paris?")
    whole = {c.text for c in pipeline.index.chunks}
    assert prepared.gate.passed and any(h.chunk.text not in whole for h in prepared.shown)  # cut to a window
    assert len(calls) == before  # nothing embedded for the question but its query


def test_serving_an_index_as_it_is_still_computes_its_sentences_ahead(tmp_path: Path, monkeypatch):
    """`rag serve --no-ingest` (the index as it is) computes the passages' sentence vectors ahead too:
    without them every question under load embedded its passages' sentences while the cores generate."""
    import argparse

    import ui.app
    from rag.cli.commands import cmd_serve

    pipeline = build_pipeline(tmp_path, EchoChatModel(), passage_tokens=8)
    monkeypatch.setattr(rag.pipeline, "Pipeline", lambda settings: pipeline)
    served = []
    monkeypatch.setattr(ui.app, "serve", served.append)  # the page itself is tested in test_ui.py
    args = argparse.Namespace(auth=None, no_ingest=True)
    assert cmd_serve(args, pipeline.settings) == 0 and served == [pipeline]
    deadline = time.monotonic() + 30
    while len(pipeline.sentence_vectors) < len(pipeline.index.chunks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pipeline.sentence_vectors) == len(pipeline.index.chunks)


@pytest.mark.slow
def test_worker_pools_started_by_a_background_job_are_not_left_at_its_lower_priority(tmp_path: Path):
    """The embedder's tokenizer and runtime pools are started when the embedder is built, not by the
    first (niced) job that uses it: threads keep their creator's nice value, and every question's
    embedding runs on those pools. With the real embedder, in a fresh process; the native threads
    (the pools) are checked."""
    import subprocess
    import sys

    script = f"""
import collections, os
from pathlib import Path
from rag.pipeline import Pipeline
from rag.settings import Settings
pipeline = Pipeline(Settings(index_dir=Path({str(tmp_path / "index")!r})).validated())
import threading
done = []
worker = threading.Thread(target=lambda: done.append(pipeline.ingest()))  # off the main thread: niced
worker.start(); worker.join()
assert done and done[0].written
pipeline.keep_passage_sentences()
pipeline.answerer().prepare("Siapa yang bertemu di Paris?")
python_threads = {{t.native_id for t in threading.enumerate()}}  # e.g. a progress bar's monitor: not a pool
native = [int(t) for t in os.listdir("/proc/self/task") if int(t) not in python_threads]
print(dict(collections.Counter(os.getpriority(os.PRIO_PROCESS, t) for t in native)))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    nices = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert set(nices) == {base}, f"threads by nice value: {nices}"
