"""Load a folder of articles into normalised Documents, reporting every file that was skipped.

Accepted: .txt, .md, .html/.htm (recursively) and .jsonl with one document per line
({"id" or "doc_id", "text"} plus optional "title", "url", "date" and other metadata).
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from rag.core.types import Document

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
JSONL_SUFFIXES = (".jsonl",)
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + JSONL_SUFFIXES
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_TITLE_CHARS = 100


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass
class CorpusLoad:
    documents: list[Document]
    skipped: list[Skipped]


_SPACES = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """NFC, unified newlines, no control characters, single spaces, at most one blank line."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", text).strip()


class _HTMLText(HTMLParser):
    _BLOCK = {
        "p",
        "div",
        "br",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "section",
        "article",
        "header",
        "footer",
        "blockquote",
        "pre",
        "ul",
        "ol",
        "table",
        "title",
    }
    _SKIP = {"script", "style", "noscript", "template", "svg", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self._skip_depth = 0
        self._in_title = False
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip_depth += 1
        if tag == "h1":
            self._in_h1 = True
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP and self._skip_depth:
            self._skip_depth -= 1
        if tag == "h1":
            self._in_h1 = False
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._skip_depth:
            self.parts.append(data)
            if self._in_h1:
                self.h1_parts.append(data)


def html_to_text(raw: str) -> tuple[str, str]:
    """Visible text of an HTML page and its title (from <title> or the first <h1>)."""
    parser = _HTMLText()
    parser.feed(raw)
    parser.close()
    title = " ".join("".join(parser.title_parts).split()) or " ".join("".join(parser.h1_parts).split())
    return normalize_text(html.unescape("".join(parser.parts))), title


def derive_title(text: str) -> str:
    """A title taken from the text itself: a short first line (a headline), else the first sentence."""
    first_line = text.split("\n", 1)[0].strip().lstrip("# ").strip()
    if first_line and len(first_line) <= MAX_TITLE_CHARS and "\n" in text and not first_line.endswith((".", ",")):
        return first_line
    sentence = re.split(r"(?<=[.!?])\s", first_line, maxsplit=1)[0]
    if len(sentence) <= MAX_TITLE_CHARS:
        return sentence
    cut = sentence[:MAX_TITLE_CHARS].rsplit(" ", 1)[0]
    return cut + "…"


def _decode(raw: bytes) -> str | None:
    if b"\x00" in raw[:8192]:
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _iter_files(root: Path) -> Iterator[Path]:
    # followlinks=False: a symlink loop cannot make the walk endless.
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_corpus(root: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> CorpusLoad:
    """Every document under ``root`` (a folder or one file). Never raises for a bad file."""
    root = Path(root)
    documents: list[Document] = []
    skipped: list[Skipped] = []
    seen_ids: set[str] = set()
    seen_hashes: dict[str, str] = {}

    def accept(doc: Document) -> None:
        if not doc.text:
            skipped.append(Skipped(doc.source, "empty after normalisation"))
            return
        if doc.doc_id in seen_ids:
            skipped.append(Skipped(doc.source, f"duplicate document id {doc.doc_id!r}"))
            return
        digest = content_hash(doc.text)
        if digest in seen_hashes:
            skipped.append(Skipped(doc.source, f"duplicate of {seen_hashes[digest]!r}"))
            return
        seen_ids.add(doc.doc_id)
        seen_hashes[digest] = doc.doc_id
        documents.append(doc)

    if root.is_file():
        files: list[Path] = [root]
        base = root.parent
    elif root.is_dir():
        files = list(_iter_files(root))
        base = root
    else:
        return CorpusLoad([], [Skipped(str(root), "no such file or folder")])

    for path in files:
        rel = path.relative_to(base).as_posix()
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            skipped.append(
                Skipped(rel, f"unsupported type {suffix or '(none)'}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
            )
            continue
        try:
            size = path.stat().st_size
            if size > max_file_bytes:
                skipped.append(Skipped(rel, f"too large ({size} bytes > {max_file_bytes})"))
                continue
            raw = path.read_bytes()
        except OSError as e:
            skipped.append(Skipped(rel, f"unreadable: {e.strerror or e}"))
            continue
        if not raw.strip():
            skipped.append(Skipped(rel, "empty file"))
            continue
        text = _decode(raw)
        if text is None:
            reason = "binary file" if b"\x00" in raw[:8192] else "undecodable (not UTF-8)"
            skipped.append(Skipped(rel, reason))
            continue
        if suffix in JSONL_SUFFIXES:
            _load_jsonl(text, rel, accept, skipped)
            continue
        if suffix in HTML_SUFFIXES:
            body, title = html_to_text(text)
        else:
            body, title = normalize_text(text), ""
        accept(Document(doc_id=rel, text=body, title=title or derive_title(body), source=rel, metadata={}))
    return CorpusLoad(documents, skipped)


def _load_jsonl(text: str, rel: str, accept, skipped: list[Skipped]) -> None:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{rel}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            skipped.append(Skipped(where, f"invalid JSON: {e.msg}"))
            continue
        if not isinstance(record, dict):
            skipped.append(Skipped(where, "not a JSON object"))
            continue
        doc_id = record.get("id", record.get("doc_id"))
        body = record.get("text")
        if not isinstance(doc_id, (str, int)) or str(doc_id) == "":
            skipped.append(Skipped(where, 'no "id" (or "doc_id") field'))
            continue
        if not isinstance(body, str):
            skipped.append(Skipped(where, 'no "text" string'))
            continue
        body = normalize_text(body)
        metadata = {k: v for k, v in record.items() if k not in ("id", "doc_id", "text", "title")}
        title = record.get("title")
        accept(
            Document(
                doc_id=str(doc_id),
                text=body,
                title=str(title) if title else derive_title(body),
                source=where,
                metadata=metadata,
            )
        )
