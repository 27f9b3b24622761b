"""Load a folder of articles into normalised Documents, reporting every file that was skipped.

Accepted: .txt, .md, .html/.htm (recursively) and .jsonl with one document per line
({"id" or "doc_id", "text"} plus optional "title", "url", "date" and other metadata).

Each file, and each line of a .jsonl file, is its own failure domain: whatever it holds, it becomes a
Document or a ``Skipped(source, reason)`` and the rest still loads. Limits, checked before the work
they bound: a file of at most ``max_file_bytes`` (DEFAULT_MAX_FILE_BYTES), a .jsonl line of at most
``max_line_bytes`` (DEFAULT_MAX_LINE_BYTES), an id of at most MAX_ID_CHARS characters, a given title of
at most MAX_GIVEN_TITLE_CHARS, JSON numbers of at most MAX_NUMBER_CHARS characters and finite, metadata
nested at most MAX_METADATA_DEPTH deep. Texts, titles, ids and metadata strings all pass through
``rag.core.unicode_text.clean_characters`` before anything is stamped on them. All work is linear in
the size of the input.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core.types import Document
from rag.core.unicode_text import clean_characters, clean_line
from rag.steps.furniture import repeated_lines, strip_furniture
from rag.steps.html_text import html_to_text
from rag.steps.metadata import extract_metadata

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
JSONL_SUFFIXES = (".jsonl",)
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + HTML_SUFFIXES + JSONL_SUFFIXES
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 1024 * 1024  # one .jsonl line is one article; a long article is ~100 kB
MAX_ID_CHARS = 512
MAX_GIVEN_TITLE_CHARS = 1000
MAX_TITLE_CHARS = 100  # a title derived from the text
MAX_NUMBER_CHARS = 100
MAX_METADATA_DEPTH = 32
_MAX_CONTROL_SHARE = 0.1  # a text file with more control characters than this is binary


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass
class CorpusLoad:
    documents: list[Document]
    skipped: list[Skipped]


class _Skip(Exception):
    """Why one file or line is not loaded: becomes ``Skipped(source, str(error))``."""


_SPACES = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_BINARY_CONTROLS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_BAD_NAME = re.compile("[\ud800-\udfff\x00-\x1f\x7f-\x9f]")


def normalize_text(text: str) -> str:
    """Clean characters (rag.core.unicode_text), unified newlines, single spaces, at most one blank line."""
    text = clean_characters(text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", text).strip()


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


def content_hash(text: str) -> str:
    """sha256 of the text as UTF-8; defined for any str (a lone surrogate is hashed, not an error)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def load_corpus(
    root: Path,
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> CorpusLoad:
    """Every document under ``root`` (a folder or one file). Never raises for a bad file or line."""
    root = Path(root)
    documents: list[Document] = []
    skipped: list[Skipped] = []
    seen_ids: set[str] = set()
    seen_hashes: dict[str, str] = {}

    def accept(doc: Document) -> None:
        if not doc.text:
            raise _Skip("empty after normalisation")
        if doc.doc_id in seen_ids:
            raise _Skip(f"duplicate document id {doc.doc_id!r}")
        digest = content_hash(doc.text)
        if digest in seen_hashes:
            raise _Skip(f"duplicate of {seen_hashes[digest]!r}")
        seen_ids.add(doc.doc_id)
        seen_hashes[digest] = doc.doc_id
        documents.append(doc)

    def skip(source: str, error: Exception) -> None:
        if isinstance(error, _Skip):
            skipped.append(Skipped(source, str(error)))
        else:  # a failure nobody foresaw: still only this file or line is lost
            log.warning("could not load %s", source, exc_info=error)
            skipped.append(Skipped(source, clean_line(f"could not be loaded ({type(error).__name__}: {error})")))

    try:
        is_file, is_dir = root.is_file(), root.is_dir()
    except (OSError, ValueError) as e:
        return CorpusLoad([], [Skipped(clean_line(str(root)), f"unreadable: {getattr(e, 'strerror', None) or e}")])
    if is_file:
        files: list[Path] = [root]
        base = root.parent
    elif is_dir:
        files = list(_iter_files(root, skipped))
        base = root
    else:
        return CorpusLoad([], [Skipped(clean_line(str(root)), "no such file or folder")])

    for path in files:
        rel = path.relative_to(base).as_posix()
        try:
            _load_file(path, rel, accept, skip, max_file_bytes, max_line_bytes)
        except Exception as e:  # noqa: BLE001 - one file must never stop the load
            skip(clean_line(rel), e)
    return CorpusLoad([_with_article_metadata(d) for d in _without_furniture(documents, skipped)], skipped)


def _with_article_metadata(doc: Document) -> Document:
    """The article's own metadata (byline, dateline, publisher, photo credit: rag.steps.metadata) kept
    in doc.metadata["article"] as {field: {"value", "start", "end"}} spans of doc.text."""
    found = extract_metadata(doc.text)
    if not found:
        return doc
    article = {f.value: {"value": span.value, "start": span.start, "end": span.end} for f, span in found.items()}
    return dataclasses.replace(doc, metadata={**doc.metadata, "article": article})


def _without_furniture(documents: list[Document], skipped: list[Skipped]) -> list[Document]:
    """Each document without its page furniture (rag.steps.furniture), the lines removed recorded in
    its metadata ("furniture_removed"); lines repeated across a source's pages count as furniture."""
    by_source: dict[str, list[Document]] = {}
    for doc in documents:
        by_source.setdefault(_source_of(doc), []).append(doc)
    repeated = {source: repeated_lines(d.text for d in docs) for source, docs in by_source.items()}
    kept: list[Document] = []
    for doc in documents:
        text, removed = strip_furniture(doc.text, repeated[_source_of(doc)])
        if not removed:
            kept.append(doc)
        elif not text:
            skipped.append(Skipped(doc.source, "only page furniture (cookie notices, navigation)"))
        else:
            metadata = {**doc.metadata, "furniture_removed": list(removed)}
            kept.append(dataclasses.replace(doc, text=text, metadata=metadata))
    return kept


def _source_of(doc: Document) -> str:
    """The site a document comes from: its "source"/"url" host in JSONL, else its folder or file."""
    site = doc.metadata.get("source") or doc.metadata.get("url")
    if isinstance(site, str) and site:
        return re.sub(r"^[a-z]+://", "", site).split("/")[0]
    where = doc.source.rsplit(":", 1)[0] if ".jsonl:" in doc.source else doc.source
    if where.endswith(".jsonl"):
        return where
    return where.rsplit("/", 1)[0] if "/" in where else ""


def _iter_files(root: Path, skipped: list[Skipped]) -> Iterator[Path]:
    def unreadable(error: OSError) -> None:
        where = os.path.relpath(error.filename, root) if error.filename else str(root)
        skipped.append(Skipped(clean_line(where), f"unreadable folder: {error.strerror or error}"))

    # followlinks=False: a symlink loop cannot make the walk endless.
    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def _load_file(
    path: Path,
    rel: str,
    accept: Callable[[Document], None],
    skip: Callable[[str, Exception], None],
    max_file_bytes: int,
    max_line_bytes: int,
) -> None:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = clean_line(suffix) or "(none)"
        raise _Skip(f"unsupported type {shown}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    if _BAD_NAME.search(rel):  # os.walk hands over undecodable name bytes as lone surrogates
        raise _Skip("the file name is not valid UTF-8 or holds control characters; rename the file")
    raw = _read_file(path, max_file_bytes)
    if not raw.strip():
        raise _Skip("empty file")
    if suffix in JSONL_SUFFIXES:
        _load_jsonl(raw, rel, accept, skip, max_line_bytes)
        return
    text = _decode_text(raw)
    if suffix in HTML_SUFFIXES:
        body, title = html_to_text(text)
        body = normalize_text(body)
        if len(title) > MAX_GIVEN_TITLE_CHARS:
            title = ""  # not a title; one is derived from the text instead
    else:
        body, title = normalize_text(text), ""
    accept(Document(doc_id=rel, text=body, title=title or derive_title(body), source=rel, metadata={}))


def _read_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``. Checked on the open file, so a file that
    changes after the listing cannot slip past; a FIFO or device is refused, never read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise _Skip("vanished before it could be read") from None
    except OSError as e:
        raise _Skip(f"unreadable: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise _Skip("not a regular file")
            if info.st_size > max_bytes:
                raise _Skip(f"too large ({info.st_size} bytes > {max_bytes})")
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise _Skip(f"unreadable: {e.strerror or e}") from None
    if len(raw) > max_bytes:
        raise _Skip(f"too large (more than {max_bytes} bytes)")
    return raw


def _decode_text(raw: bytes) -> str:
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise _Skip(f"binary file (NUL byte at byte {nul})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _Skip(f"undecodable (not UTF-8: byte 0x{raw[e.start]:02x} at byte {e.start})") from None
    controls = len(text) - len(_BINARY_CONTROLS.sub("", text))
    if controls > _MAX_CONTROL_SHARE * len(text):
        raise _Skip(f"binary file ({controls} control characters in {len(text)})")
    return text


# --- JSONL: one document per line -------------------------------------------------------------------


def _load_jsonl(
    raw: bytes,
    rel: str,
    accept: Callable[[Document], None],
    skip: Callable[[str, Exception], None],
    max_line_bytes: int,
) -> None:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        if not raw.strip():
            raise _Skip("empty file")
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        where = f"{rel}:{number}"
        try:
            accept(_read_record(line, where, max_line_bytes))
        except Exception as e:  # noqa: BLE001 - one line must never stop the load
            skip(where, e)


def _read_record(line: bytes, where: str, max_line_bytes: int) -> Document:
    if len(line) > max_line_bytes:
        raise _Skip(f"line too long ({len(line)} bytes > {max_line_bytes})")
    if b"\x00" in line:
        raise _Skip("binary content (NUL byte)")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Skip(f"not UTF-8 (byte 0x{line[e.start]:02x} at byte {e.start})") from None
    try:
        record = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except json.JSONDecodeError as e:
        raise _Skip(f"invalid JSON: {e.msg}") from None
    except RecursionError:
        raise _Skip("invalid JSON: nested too deeply") from None
    if not isinstance(record, dict):
        raise _Skip(f"not a JSON object ({_json_type(record)})")
    key = "id" if record.get("id") is not None else "doc_id"
    doc_id = record.get(key)
    if doc_id is None:
        raise _Skip('no "id" (or "doc_id") field')
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
        raise _Skip(f'"{key}" must be a string or an integer, not {_json_type(doc_id)}')
    doc_id = str(doc_id)
    if len(doc_id) > MAX_ID_CHARS:
        raise _Skip(f'"{key}" is {len(doc_id)} characters long; the limit is {MAX_ID_CHARS}')
    doc_id = clean_line(doc_id)
    if not doc_id:
        raise _Skip(f'"{key}" is empty')
    body = record.get("text")
    if not isinstance(body, str):
        raise _Skip('no "text" string' if body is None else f'"text" must be a string, not {_json_type(body)}')
    title = record.get("title")
    if title is not None and not isinstance(title, str):
        raise _Skip(f'"title" must be a string, not {_json_type(title)}')
    if title and len(title) > MAX_GIVEN_TITLE_CHARS:
        raise _Skip(f'"title" is {len(title)} characters long; the limit is {MAX_GIVEN_TITLE_CHARS}')
    body = normalize_text(body)
    title = clean_line(title or "")
    metadata = {
        clean_line(k): _clean_json(v, 1) for k, v in record.items() if k not in ("id", "doc_id", "text", "title")
    }
    return Document(doc_id=doc_id, text=body, title=title or derive_title(body), source=where, metadata=metadata)


def _parse_int(digits: str) -> int:
    # checked before int(): Python refuses (ValueError) integers of more than 4300 digits, slowly
    if len(digits) > MAX_NUMBER_CHARS:
        raise _Skip(f"a number has {len(digits)} digits; the limit is {MAX_NUMBER_CHARS}")
    return int(digits)


def _parse_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _Skip(f"a number has {len(literal)} characters; the limit is {MAX_NUMBER_CHARS}")
    value = float(literal)
    if not math.isfinite(value):
        raise _Skip(f"the number {literal} is out of range (JSON numbers must be finite)")
    return value


def _parse_constant(name: str) -> float:
    raise _Skip(f"{name} is not a JSON value")


def _json_type(value: Any) -> str:
    """The JSON type of a parsed value, with its article: "a list", "an object", "null"."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _clean_json(value: Any, depth: int) -> Any:
    """A metadata value with clean strings, refused when nested deeper than MAX_METADATA_DEPTH."""
    if isinstance(value, str):
        return clean_characters(value)
    if isinstance(value, (list, dict)) and depth >= MAX_METADATA_DEPTH:
        raise _Skip(f"metadata nested more than {MAX_METADATA_DEPTH} levels deep")
    if isinstance(value, list):
        return [_clean_json(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {clean_characters(k): _clean_json(v, depth + 1) for k, v in value.items()}
    return value
