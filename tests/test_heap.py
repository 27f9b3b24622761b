"""A serving process keeps what it has loaded out of the garbage collector's full passes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import EchoChatModel
from test_ui import build_pipeline

from rag.core.choices import LLMBackend
from rag.core.heap import settle
from rag.pipeline import Pipeline


class Node:
    me: Node | None = None
    held: object = None


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the other tests' process as it was


def test_settling_collects_what_is_unreachable_and_freezes_the_rest():
    garbage = Node()
    garbage.me = garbage
    gone = weakref.ref(garbage)
    del garbage
    kept = Node()
    kept.me = kept
    settled = settle()
    assert gone() is None  # collected, not frozen
    assert settled.frozen > 0 and gc.get_freeze_count() > 0
    died = weakref.ref(kept)
    del kept  # a cycle that dies while frozen: full passes no longer see it...
    gc.collect()
    assert died() is not None
    assert settle().collected > 0 and died() is None  # ...until the next settling


def test_a_settled_server_collects_the_previous_index_generation_when_it_switches(tmp_path: Path):
    pipeline = build_pipeline(tmp_path, EchoChatModel())
    previous = weakref.ref(pipeline.index)
    holder = Node()  # the previous generation held by a reference cycle, as parsed objects often are
    holder.me, holder.held = holder, pipeline.index
    pipeline.settle_heap()
    del holder
    (pipeline.settings.corpus_dir / "gempa.txt").write_text("Gempa kecil mengguncang Cianjur.", encoding="utf-8")
    other = Pipeline(pipeline.settings, embedder=pipeline.embedder, chat_models={LLMBackend.LOCAL: EchoChatModel()})
    other.ingest()  # a new generation, as `rag ingest` in another process writes it
    assert pipeline.refresh_index() and "gempa.txt" in pipeline.index.documents
    assert previous() is None
