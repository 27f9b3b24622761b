"""The sources panel: one card per passage the model reads, with its place in the article and its
sentence closest to the question highlighted. Everything from a document is HTML-escaped here and
nothing in it ever becomes a link or an image.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from rag.core.text import WORD, stopwords
from rag.core.types import Answer, Chunk, Document, Hit
from rag.steps.answer.answerer import Prepared
from rag.steps.chunking import split_sentences

CONTEXT_CHARS = 280  # article text shown around the passage
WHOLE_ARTICLE_MAX_CHARS = 20_000  # longer articles open a wider window instead of all of their text
WIDER_CONTEXT_CHARS = 2_000
SNIPPET_CHARS = 220


def question_words(question: str) -> frozenset[str]:
    """The words of a question that can single out a sentence: no stop words, numbers kept."""
    stop = stopwords()
    return frozenset(w for w in WORD.findall(question.lower()) if (len(w) > 1 or w.isdigit()) and w not in stop)


def best_sentence(text: str, words: frozenset[str]) -> tuple[int, int] | None:
    """The span of the sentence of ``text`` sharing most words with the question (the first on a tie);
    None when no sentence shares any. Lexical, so it costs microseconds and needs no model."""
    best, best_score = None, 0
    for span in split_sentences(text):
        score = len(words & set(WORD.findall(text[span.start : span.end].lower())))
        if score > best_score:
            best, best_score = (span.start, span.end), score
    return best


def _escape(text: str, matched: frozenset[str] = frozenset()) -> str:
    """Escaped text, line breaks kept; each word whose lower case is in ``matched`` marked."""
    if not matched:
        return html.escape(text).replace("\n", "<br>")
    parts, last = [], 0
    for m in WORD.finditer(text):
        if m.group().lower() in matched:
            parts += [_escape(text[last : m.start()]), f'<mark class="match">{html.escape(m.group())}</mark>']
            last = m.end()
    parts.append(_escape(text[last:]))
    return "".join(parts)


def _passage(chunk: Chunk, words: frozenset[str], matched: frozenset[str] = frozenset()) -> str:
    """The passage, marked, with its best sentence marked again inside it (and ``matched`` words)."""
    span = best_sentence(chunk.text, words)
    text = chunk.text
    if span is None:
        inner = _escape(text, matched)
    else:
        a, b = span
        inner = f'{_escape(text[:a], matched)}<mark class="best">{_escape(text[a:b], matched)}</mark>{_escape(text[b:], matched)}'
    return f'<mark class="window">{inner}</mark>'


def _in_document(doc: Document | None, chunk: Chunk) -> bool:
    return doc is not None and doc.text[chunk.start : chunk.end] == chunk.text


def _context(
    doc: Document | None,
    chunk: Chunk,
    words: frozenset[str],
    chars: int = CONTEXT_CHARS,
    matched: frozenset[str] = frozenset(),
) -> str:
    """The passage inside the article text around it."""
    passage = _passage(chunk, words, matched)
    if doc is None or not _in_document(doc, chunk):
        return passage
    before = doc.text[max(0, chunk.start - chars) : chunk.start]
    after = doc.text[chunk.end : chunk.end + chars]
    lead = "…" if chunk.start > chars else ""
    tail = "…" if chunk.end + chars < len(doc.text) else ""
    return f"{lead}{_escape(before)}{passage}{_escape(after)}{tail}"


def _more(doc: Document | None, chunk: Chunk, words: frozenset[str], matched: frozenset[str]) -> str:
    if doc is None or not _in_document(doc, chunk):
        return ""
    if len(doc.text) <= WHOLE_ARTICLE_MAX_CHARS:
        label, text = (
            f"Read the whole article ({len(doc.text):,} characters)",
            _context(doc, chunk, words, len(doc.text), matched),
        )
    else:
        label = f"Read more around it (the article has {len(doc.text):,} characters)"
        text = _context(doc, chunk, words, WIDER_CONTEXT_CHARS, matched)
    return f'<details class="article"><summary>{label}</summary><div class="article-text">{text}</div></details>'


def _position(doc: Document | None, chunk: Chunk) -> str:
    if doc is None or not _in_document(doc, chunk):
        return f"characters {chunk.start:,}–{chunk.end:,}"
    percent = 100 * chunk.start / max(1, len(doc.text))
    return f"characters {chunk.start:,}–{chunk.end:,} of {len(doc.text):,} ({percent:.0f}% into the article)"


def card(
    turn: int | str,
    n: int,
    chunk: Chunk,
    doc: Document | None,
    words: frozenset[str],
    *,
    cited: bool,
    matched: frozenset[str] = frozenset(),
    extra: str = "",
) -> str:
    """One passage: its [n] badge, title, position and text; the target of #src-<turn>-<n>. The words
    in ``matched`` (lower case) are marked in the passage; ``extra`` is HTML the caller built (escaped)."""
    tag = ' <span class="cited-tag">cited</span>' if cited else ""
    return (
        f'<div class="source{" cited" if cited else ""}" id="src-{turn}-{n}" tabindex="-1">'
        f'<div class="source-head"><span class="badge">[{n}]</span> '
        f'<span class="source-title">{html.escape(chunk.title or chunk.doc_id)}</span>{tag}</div>'
        f'<div class="source-meta">{html.escape(chunk.doc_id)} · {_position(doc, chunk)}</div>'
        f"{extra}"
        f'<div class="source-context">{_context(doc, chunk, words, matched=matched)}</div>'
        f"{_more(doc, chunk, words, matched)}</div>"
    )


def evidence_html(turn: int, prepared: Prepared, documents: dict[str, Document]) -> str:
    """The cards of one question, shown as soon as retrieval ends (before any token of the answer):
    the passages the model will read, or, when the evidence gate declines, the closest ones."""
    words = question_words(prepared.standalone)
    parts = [f'<div class="turn-question">{html.escape(prepared.question)}</div>']
    if prepared.gate.passed:
        hits: Sequence[Hit] = prepared.shown
        parts.append(f'<div class="reading-note">The model reads these {len(hits)} passages:</div>')
    else:
        hits = prepared.retrieval.hits
        parts.append(
            '<div class="declined-note">No passage is close enough to answer; the closest ones are below.</div>'
        )
    parts += [card(turn, n, h.chunk, documents.get(h.chunk.doc_id), words, cited=False) for n, h in enumerate(hits, 1)]
    parts.append(retrieved_table(prepared.retrieval.hits, open_=False))
    return "".join(parts)


def answer_sources(turn: int, answer: Answer, documents: dict[str, Document]) -> str:
    """The cards of an answered question: the passages it cites first, then the others it read."""
    words = question_words(answer.standalone_question or answer.question)
    cited = {c.n for c in answer.citations}
    parts = [f'<div class="turn-question">{html.escape(answer.question)}</div>']
    if answer.declined:
        parts.append('<div class="declined-note">No passage supports an answer; the closest ones are below.</div>')
    cards = [
        (n, card(turn, n, h.chunk, documents.get(h.chunk.doc_id), words, cited=n in cited))
        for n, h in enumerate(answer.hits, 1)
    ]
    parts += [c for n, c in cards if n in cited]
    others = [c for n, c in cards if n not in cited]
    if others and cited:
        parts.append(
            f'<details class="uncited"><summary>Also read, not cited ({len(others)})</summary>{"".join(others)}</details>'
        )
    else:
        parts += others
    parts.append(retrieved_table(answer.hits, open_=False))
    return "".join(parts)


def retrieved_table(hits: Sequence[Hit], *, open_: bool) -> str:
    rows = []
    for n, h in enumerate(hits, start=1):
        details = " ".join(
            f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in h.details.items()
            if not k.endswith("_rank")
        )
        rows.append(
            f"<tr><td>{n}</td><td>{h.score:.3f}</td><td>{html.escape(h.method)}</td>"
            f"<td>{html.escape(details)}</td><td><b>{html.escape(h.chunk.title or h.chunk.doc_id)}</b><br>"
            f"{html.escape(' '.join(h.chunk.text.split())[:SNIPPET_CHARS])}…</td></tr>"
        )
    return (
        f'<details class="retrieved"{" open" if open_ else ""}><summary>Scores of the passages retrieved</summary>'
        "<table><thead><tr><th>#</th><th>score</th><th>method</th><th>evidence</th><th>passage</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></details>"
    )


def sources_panel(latest: str | None, earlier: Sequence[tuple[str, str]]) -> str:
    """The panel: the newest question's cards open, earlier ones (question, cards) folded, newest first."""
    if latest is None and not earlier:
        return '<div class="sources-empty">The passages behind each answer appear here as soon as they are found.</div>'
    parts = [f'<section class="turn latest">{latest}</section>'] if latest is not None else []
    for question, body in earlier:
        parts.append(f'<details class="turn"><summary>Earlier: {html.escape(question[:80])}</summary>{body}</details>')
    return "".join(parts)
