"""The chat messages as HTML built here (the Chatbot renders them without Markdown): every text from a
user, a document or a model is HTML-escaped, so a URL, an e-mail address or Markdown image syntax
stays plain text; the only links are the product's own [n] citations (#src-<turn>-<n>)."""

from __future__ import annotations

import html
import re

from rag.core.types import Answer
from ui.waiting import Wait

DECLINED_PREFIX = '<div class="declined">'  # a declined answer is set apart from real answers
CURSOR = '<span class="cursor">▌</span>'
_MARKER = re.compile(r"\[(\d+)\]")


def plain_html(text: str) -> str:
    """Text shown exactly as typed: escaped, line breaks kept, nothing linked."""
    return html.escape(text).replace("\n", "<br>")


def user_html(question: str) -> str:
    return f'<div class="user-text">{plain_html(question)}</div>'


def answer_html(answer: Answer, turn: int) -> str:
    """The answer with each valid [n] as a link to its card in the sources panel."""
    valid = {c.n for c in answer.citations}

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return f'<a class="cite" href="#src-{turn}-{n}">[{n}]</a>' if n in valid else ""

    body = _MARKER.sub(link, plain_html(answer.text))
    if answer.declined:
        return f"{DECLINED_PREFIX}<em>{body}</em></div>"
    return f'<div class="answer">{body}</div>'


def waiting_note(wait: Wait | None) -> str:
    if wait is None:
        return ""
    if wait.ahead == 0:
        return "next for the language model"
    ahead = "1 question" if wait.ahead == 1 else f"{wait.ahead} questions"
    return f"waiting for the language model: {ahead} ahead of yours, about {wait.estimate_s} s"


def progress_html(stage: str, partial: str = "", wait: Wait | None = None) -> str:
    """An answer on its way: what is happening now, then the text so far."""
    note = waiting_note(wait)
    status = html.escape(stage + (f" · {note}" if note else ""))
    body = f'<div class="answer streaming">{plain_html(partial)}{CURSOR}</div>' if partial else ""
    return f'<div class="stage">{status}</div>{body}'


def stopped_html(partial: str) -> str:
    body = f'<div class="answer">{plain_html(partial)}</div>' if partial else ""
    return f'{body}<div class="stopped">Stopped. This reply was not checked against the passages.</div>'


def note_html(kind: str, message: str) -> str:
    """A rejection or a failure, said plainly in the chat."""
    return f'<div class="note {kind}"><b>{"Note" if kind == "rejected" else "Error"}:</b> {plain_html(message)}</div>'


def lines_html(lines: list[str]) -> str:
    return "".join(f"<div>{plain_html(line)}</div>" for line in lines)


CSS = """
#sources { max-height: 78vh; overflow-y: auto; }
.source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 8px 10px; margin: 8px 0; }
.source.active { outline: 3px solid #f5a623; }
.source.cited { border-color: #2d6cdf; }
.source mark.window { background: #fff6cc; color: inherit; padding: 0 1px; }
.source mark.best { background: #ffd84d; color: inherit; font-weight: 500; }
.source-head { font-weight: 600; }
.badge { background: #2d6cdf; color: #fff; border-radius: 4px; padding: 0 5px; margin-right: 4px; }
.cited-tag { font-size: 0.75em; font-weight: 500; color: #2d6cdf; margin-left: 6px; }
.source-meta { font-size: 0.8em; opacity: 0.75; margin: 2px 0 6px; }
.source-context { font-size: 0.92em; line-height: 1.45; overflow-wrap: anywhere; }
.article-text { max-height: 300px; overflow-y: auto; font-size: 0.9em; margin-top: 6px; overflow-wrap: anywhere; }
.turn-question { font-weight: 600; margin: 6px 0; overflow-wrap: anywhere; }
.reading-note { font-size: 0.85em; opacity: 0.8; }
.declined-note { background: #fff4e5; color: #7a4b00; border-radius: 6px; padding: 6px 8px; }
.retrieved table { font-size: 0.8em; width: 100%; border-collapse: collapse; }
.retrieved td, .retrieved th { border-bottom: 1px solid var(--border-color-primary); padding: 3px; vertical-align: top; }
#chat .stage { font-size: 0.85em; opacity: 0.75; font-style: italic; }
#chat .declined { border-left: 3px solid #f0b429; padding-left: 8px; }
#chat .stopped { font-size: 0.85em; color: #9a3412; margin-top: 4px; }
#chat .note.failed { color: #b91c1c; }
#chat .user-text, #chat .answer { overflow-wrap: anywhere; white-space: normal; }
#chat a.cite { font-weight: 600; text-decoration: none; }
#status, #indexing { font-size: 0.85em; opacity: 0.85; }
#status .problem { color: #b91c1c; opacity: 1; }
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
  for (let details = target.closest("details"); details; details = details.parentElement.closest("details")) {
    details.open = true;
  }
  target.scrollIntoView({behavior: "smooth", block: "center"});
  target.focus({preventScroll: true});
}, true);
</script>
"""
