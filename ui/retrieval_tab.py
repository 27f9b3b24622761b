"""The retrieval-testing tab: one question searched by BM25, dense and hybrid side by side, no
language model. Each column is that method's ranked passages, drawn as the sources panel draws them
(ui/sources.py: everything from a document escaped, nothing in it ever a link or an image), with each
hit's scores from every method and the question's words that BM25 matches marked in the passage.
The searches use the pipeline's own retriever on its current index, with one query embedding for
all three (so every hit, BM25's included, shows its cosine to the question)."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rag.core.choices import Mode
from rag.core.text import words
from rag.core.types import Hit
from rag.pipeline import Pipeline
from rag.steps.bm25 import Tokenizer
from rag.steps.retrieve import Retrieval
from rag.steps.store.base import SearchIndex
from ui.checks import MAX_K, MIN_K, Rejected, log_rejection, parse_k, parse_question
from ui.html import note_html
from ui.sources import card, question_words

MODES = (Mode.BM25, Mode.DENSE, Mode.HYBRID)  # left to right
SEARCH_CONCURRENCY = 4


@dataclass(frozen=True)
class Column:
    mode: Mode
    retrieval: Retrieval
    search_ms: float  # this method's search, the shared query embedding not included


@dataclass(frozen=True)
class Comparison:
    question: str
    k: int
    embed_ms: float
    columns: tuple[Column, ...]
    matched: frozenset[str]  # lower-case words of the passages that BM25 matches to the question


def index_tokenizer(index: SearchIndex) -> Tokenizer:
    """BM25's analyser as the index was built with it (its manifest says how)."""
    bm25 = index.manifest.get("bm25", {})
    return Tokenizer(stem=bool(bm25.get("stem", True)), stopwords=bool(bm25.get("stopwords", True)))


def matched_words(tokenize: Callable[[str], list[str]], question: str, texts: Iterable[str]) -> frozenset[str]:
    """The words of ``texts`` whose BM25 term is one of the question's (stemmed as the index stems)."""
    terms = set(tokenize(question))
    found: set[str] = set()
    for word in {w for text in texts for w in words(text)}:
        if set(tokenize(word)) & terms:
            found.add(word)
    return frozenset(found)


def compare(pipeline: Pipeline, question: Any, k: Any) -> Comparison:
    """The three searches for a checked question and k; ``Rejected`` names a bad input."""
    text = parse_question(question, pipeline.settings.max_question_chars)
    chosen_k = parse_k(k)
    pipeline.refresh_index(background=True)  # a newer index generation is picked up without waiting for it
    retriever = pipeline.retriever
    started = time.perf_counter()
    vector = retriever.embedder.embed_query(text)
    embed_ms = (time.perf_counter() - started) * 1000
    columns = []
    for mode in MODES:
        started = time.perf_counter()
        retrieval = retriever.search(text, chosen_k, mode, vector=vector)
        columns.append(Column(mode, retrieval, (time.perf_counter() - started) * 1000))
    texts = [h.chunk.text for c in columns for h in c.retrieval.hits]
    matched = matched_words(index_tokenizer(retriever.index), text, texts)
    return Comparison(text, chosen_k, embed_ms, tuple(columns), matched)


def scores_html(hit: Hit) -> str:
    """The hit's score in its own method; for hybrid, the dense and BM25 scores and ranks it was fused
    from ("—" where that method did not rank it among its candidates); the cosine to the question
    where the method's own score is not that cosine already."""
    d = hit.details
    parts = [f"<b>{html.escape(hit.method)} {hit.score:.3f}</b>"]
    if hit.method == Mode.HYBRID:
        for method in ("dense", "bm25"):
            rank = d.get(f"{method}_rank")
            parts.append(f"{method} {d[method]:.3f} (#{int(rank)})" if method in d and rank else f"{method} —")
    if "cosine" in d and "dense" not in d:
        parts.append(f"cosine {d['cosine']:.3f}")
    return f'<div class="scores">{" · ".join(parts)}</div>'


def column_html(comparison: Comparison, column: Column, documents: dict[str, Any]) -> str:
    hits = column.retrieval.hits
    words_ = question_words(comparison.question)
    head = (
        f'<div class="retrieval-head">{len(hits)} passage{"s" if len(hits) != 1 else ""} · '
        f"{column.search_ms:.1f} ms</div>"
    )
    if not hits:
        return head + '<div class="sources-empty">Nothing found.</div>'
    cards = [
        card(
            f"try-{column.mode.value}",
            n,
            h.chunk,
            documents.get(h.chunk.doc_id),
            words_,
            cited=False,
            matched=comparison.matched,
            extra=scores_html(h),
        )
        for n, h in enumerate(hits, start=1)
    ]
    return head + "".join(cards)


def summary_html(comparison: Comparison, pipeline: Pipeline) -> str:
    matched = ", ".join(sorted(comparison.matched)[:30]) or "none"
    return (
        f'<div class="retrieval-summary">k = {comparison.k} · question embedded in {comparison.embed_ms:.1f} ms · '
        f'words matched by BM25 (marked <mark class="match">like this</mark>): {html.escape(matched)}</div>'
    )


def search_outputs(pipeline: Pipeline, question: Any, k: Any) -> tuple[str, ...]:
    """(summary, one column per mode in MODES) as HTML; a rejected input is said in the summary."""
    try:
        comparison = compare(pipeline, question, k)
    except Rejected as e:
        log_rejection("retrieval tab", e)
        return (note_html("rejected", e.message), *("" for _ in MODES))
    documents = pipeline.retriever.index.documents
    return (summary_html(comparison, pipeline), *(column_html(comparison, c, documents) for c in comparison.columns))


def build_retrieval_tab(pipeline: Pipeline) -> None:
    """The tab's components and events, inside the caller's gr.Tabs."""
    import gradio as gr

    settings = pipeline.settings
    with gr.Tab("Test retrieval", id="retrieval", elem_id="retrieval-tab"):
        gr.Markdown(
            "Search the index with each method side by side (no language model). Scores: dense is the cosine "
            "to the question; hybrid fuses the dense and BM25 scores shown with their ranks; BM25 hits show "
            "their cosine too. Words BM25 matches are marked."
        )
        with gr.Row(equal_height=True):
            box = gr.Textbox(
                placeholder="A question to search for… / Pertanyaan…",
                show_label=False,
                scale=5,
                max_length=settings.max_question_chars,
                elem_id="retrieval-question",
                submit_btn=True,
            )
            k = gr.Slider(MIN_K, MAX_K, value=settings.k, step=1, label="k", scale=2, elem_id="retrieval-k")
        summary = gr.HTML(elem_id="retrieval-summary")
        columns = []
        with gr.Row(equal_height=False):
            for mode in MODES:
                with gr.Column(min_width=280):
                    gr.Markdown(f"#### {mode.value}")
                    columns.append(gr.HTML(elem_id=f"retrieval-{mode.value}", elem_classes=["retrieval-column"]))
        box.submit(
            lambda question, k_: search_outputs(pipeline, question, k_),
            [box, k],
            [summary, *columns],
            api_visibility="undocumented",
            api_name="retrieve",
            concurrency_limit=SEARCH_CONCURRENCY,
            concurrency_id="retrieval-tab",
        )


CSS = """
.source mark.match { background: #b9e6c9; color: inherit; border-bottom: 2px solid #1f8a4c; padding: 0; }
.retrieval-summary mark.match { background: #b9e6c9; border-bottom: 2px solid #1f8a4c; }
.retrieval-column .scores { font-size: 0.8em; margin: 2px 0 6px; overflow-wrap: anywhere; }
.retrieval-head, .retrieval-summary { font-size: 0.85em; opacity: 0.85; }
"""
