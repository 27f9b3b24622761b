"""An ingest in the serving process embeds only while no answer is being generated (they share the
cores), and still moves on under a steady stream of questions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fakes import EchoChatModel
from test_ui import build_pipeline

import rag.pipeline

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


def test_an_ingest_waits_while_an_answer_is_generated(tmp_path: Path):
    pipeline = build_pipeline(tmp_path, EchoChatModel())
    (tmp_path / "corpus" / "makassar.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    calls = _recording(pipeline)
    reports = []
    with pipeline.generation_queue.slot("an answer being generated"):
        worker = threading.Thread(target=lambda: reports.append(pipeline.ingest()))
        worker.start()
        time.sleep(1.5)
        assert calls == [] and worker.is_alive()  # chunked, then waiting before its first batch
        released = time.monotonic()
    worker.join(timeout=30)
    assert not worker.is_alive() and reports[0].written and reports[0].embedded_chunks > 0
    assert calls and calls[0] >= released


def test_an_ingest_still_moves_on_when_questions_never_stop(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(rag.pipeline, "ANSWERS_FIRST_MAX_WAIT_S", 0.3)
    pipeline = build_pipeline(tmp_path, EchoChatModel())
    (tmp_path / "corpus" / "makassar.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    with pipeline.generation_queue.slot("answers all the time"):
        report = pipeline.ingest()  # returns although the slot is never given back
    assert report.written and report.embedded_chunks > 0


def test_a_background_ingest_runs_at_a_lower_priority_and_leaves_its_caller_as_it_was():
    import os
    import threading

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
    done = []
    with pipeline.generation_queue.slot("an answer being generated"):
        worker = threading.Thread(target=lambda: done.append(pipeline.keep_passage_sentences()))
        worker.start()
        time.sleep(1.0)
        assert calls == [] and worker.is_alive()  # waiting for the answer
    worker.join(timeout=30)
    chunks = len(pipeline.index.chunks)
    assert done == [chunks] and len(pipeline.sentence_vectors) == chunks and len(calls) == chunks  # a batch each
    prepared = pipeline.answerer().prepare("Siapa yang bertemu di Paris?")
    whole = {c.text for c in pipeline.index.chunks}
    assert prepared.gate.passed and any(h.chunk.text not in whole for h in prepared.shown)  # cut to a window
    assert len(calls) == chunks  # ... from the sentences kept ahead: nothing embedded for the question
    with pytest.MonkeyPatch.context() as m:
        m.setattr(rag.pipeline, "KEEP_SENTENCES_MAX_CHUNKS", chunks - 1)
        assert pipeline.keep_passage_sentences() == 0
