"""HTML and Markdown for the chat page. Everything that came from a document or a model is escaped."""

from __future__ import annotations

import html
import re

from rag.core.types import Answer, Chunk, Document, Hit

CONTEXT_CHARS = 280
DECLINED_PREFIX = "> "  # a declined answer is a quote block: set apart from real answers
_MARKER = re.compile(r"\[(\d+)\]")


def escape_markdown(text: str) -> str:
    """Text shown as-is inside a Markdown message: HTML escaped, Markdown syntax neutralised."""
    escaped = html.escape(text, quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+\-!|>~])", r"\\\1", escaped)


def answer_markdown(answer: Answer, turn: int) -> str:
    """The answer with each [n] as a link to its passage in the sources panel (#src-<turn>-<n>)."""
    valid = {c.n for c in answer.citations}
    body = escape_markdown(answer.text)

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return f"[\\[{n}\\]](#src-{turn}-{n})" if n in valid else ""

    body = re.sub(r"\\\[(\d+)\\\]", link, body)
    if answer.declined:
        return f"{DECLINED_PREFIX}*{body}*"
    return body


def streaming_markdown(partial: str) -> str:
    return escape_markdown(partial) + " ▌"


def _context(doc: Document | None, chunk: Chunk, chars: int = CONTEXT_CHARS) -> str:
    """The chunk highlighted inside the text around it."""
    if doc is None or doc.text[chunk.start : chunk.end] != chunk.text:
        return f"<mark>{html.escape(chunk.text)}</mark>"
    before = doc.text[max(0, chunk.start - chars) : chunk.start]
    after = doc.text[chunk.end : chunk.end + chars]
    lead = "…" if chunk.start > chars else ""
    tail = "…" if chunk.end + chars < len(doc.text) else ""
    return (f"{lead}{html.escape(before)}<mark>{html.escape(chunk.text)}</mark>{html.escape(after)}{tail}").replace(
        "\n", "<br>"
    )


def _whole_article(doc: Document | None, chunk: Chunk) -> str:
    if doc is None:
        return ""
    text = (
        html.escape(doc.text[: chunk.start])
        + "<mark>"
        + html.escape(chunk.text)
        + "</mark>"
        + html.escape(doc.text[chunk.end :])
    ).replace("\n", "<br>")
    return (
        f'<details class="article"><summary>Read the whole article ({len(doc.text):,} characters)</summary>'
        f'<div class="article-text">{text}</div></details>'
    )


def _position(doc: Document | None, chunk: Chunk) -> str:
    if doc is None:
        return f"characters {chunk.start:,}–{chunk.end:,}"
    percent = 100 * chunk.start / max(1, len(doc.text))
    return f"characters {chunk.start:,}–{chunk.end:,} of {len(doc.text):,} ({percent:.0f}% into the article)"


def sources_html(turns: list[tuple[int, str, Answer]], documents: dict[str, Document]) -> str:
    """The sources panel: for each answer (newest first), its cited passages and all retrieved ones."""
    if not turns:
        return '<div class="sources-empty">Citations and retrieved passages appear here.</div>'
    parts = []
    for position, (turn, question, answer) in enumerate(reversed(turns)):
        inner = [f'<div class="turn-question">{html.escape(question)}</div>']
        if answer.declined:
            inner.append('<div class="declined-note">No passage supports an answer; the closest ones are below.</div>')
        for c in answer.citations:
            doc = documents.get(c.chunk.doc_id)
            inner.append(
                f'<div class="source" id="src-{turn}-{c.n}" tabindex="-1">'
                f'<div class="source-head"><span class="badge">[{c.n}]</span> '
                f'<span class="source-title">{html.escape(c.chunk.title or c.chunk.doc_id)}</span></div>'
                f'<div class="source-meta">{html.escape(c.chunk.doc_id)} · {_position(doc, c.chunk)}</div>'
                f'<div class="source-context">{_context(doc, c.chunk)}</div>{_whole_article(doc, c.chunk)}</div>'
            )
        inner.append(_retrieved_table(answer.hits))
        body = "".join(inner)
        if position == 0:
            parts.append(f'<section class="turn latest">{body}</section>')
        else:
            parts.append(
                f'<details class="turn"><summary>Earlier: {html.escape(question[:80])}</summary>{body}</details>'
            )
    return "".join(parts)


def _retrieved_table(hits: tuple[Hit, ...]) -> str:
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
            f"{html.escape(' '.join(h.chunk.text.split())[:220])}…</td></tr>"
        )
    return (
        '<details class="retrieved" open><summary>Passages retrieved for this question</summary>'
        "<table><thead><tr><th>#</th><th>score</th><th>method</th><th>evidence</th><th>passage</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></details>"
    )


CSS = """
#sources { max-height: 78vh; overflow-y: auto; }
.source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin: 8px 0; }
.source.active { outline: 3px solid #f5a623; }
.source mark { background: #ffe58a; color: inherit; padding: 0 2px; }
.source-head { font-weight: 600; }
.badge { background: #2d6cdf; color: #fff; border-radius: 4px; padding: 0 5px; margin-right: 4px; }
.source-meta { font-size: 0.8em; opacity: 0.75; margin: 2px 0 6px; }
.source-context { font-size: 0.92em; line-height: 1.45; }
.article-text { max-height: 300px; overflow-y: auto; font-size: 0.9em; margin-top: 6px; }
.turn-question { font-weight: 600; margin: 6px 0; }
.declined-note { background: #fff4e5; color: #7a4b00; border-radius: 6px; padding: 6px 8px; }
.retrieved table { font-size: 0.8em; width: 100%; border-collapse: collapse; }
.retrieved td, .retrieved th { border-bottom: 1px solid var(--border-color-primary); padding: 3px; vertical-align: top; }
#status { font-size: 0.85em; opacity: 0.85; }
@media (max-width: 768px) {
  #sources { max-height: none; }
  #chat { height: 420px !important; }
  .retrieved td:nth-child(4), .retrieved th:nth-child(4) { display: none; }
}
"""

# Clicking [n] in an answer scrolls the sources panel to that passage and highlights it.
HEAD = """
<script>
document.addEventListener("click", function (event) {
  const link = event.target.closest('a[href*="#src-"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const id = link.getAttribute("href").split("#")[1];
  const target = document.getElementById(id);
  if (!target) return;
  document.querySelectorAll(".source.active").forEach(function (el) { el.classList.remove("active"); });
  target.classList.add("active");
  const details = target.closest("details");
  if (details) details.open = true;
  target.scrollIntoView({behavior: "smooth", block: "center"});
  target.focus({preventScroll: true});
}, true);
</script>
"""
