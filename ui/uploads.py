"""Articles added from the page: copied into <corpus>/uploads/, checked, indexed in the background.

- A file's name cannot leave the upload folder, an existing file is never overwritten, only the
  corpus's types are taken, up to ``max_upload_mb``.
- Gradio's own copy of each upload is deleted as soon as it is copied (Gradio serves files in its
  upload folder to anyone holding the URL; the page also blocks that folder from being served).
- A file the corpus loader cannot use at all (binary, not UTF-8, empty, a duplicate, no valid line) is
  moved to <corpus>/.rejected/ (the loader skips dot-folders) and reported once, with its reason;
  lines skipped inside a .jsonl file are reported too. "Added" counts only files that gave articles.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rag.pipeline import Pipeline
from rag.steps.corpus import load_corpus

log = logging.getLogger(__name__)

UPLOAD_TYPES = (".txt", ".md", ".html", ".htm", ".jsonl")
UPLOAD_DIR = "uploads"
REJECTED_DIR = ".rejected"
MAX_REASONS_SHOWN = 5  # per file; the rest are counted


def safe_upload_name(name: str) -> str:
    """A file name that cannot leave the upload folder: no directories, only plain characters."""
    base = Path(name.replace("\\", "/")).name
    stem, dot, suffix = base.rpartition(".")
    clean = re.sub(r"[^\w.-]+", "_", stem or suffix).strip("._") or "upload"
    return f"{clean[:80]}{dot}{suffix.lower() if dot else ''}"


def _free_name(folder: Path, name: str) -> Path:
    target, counter = folder / name, 1
    while target.exists():
        target = folder / f"{Path(name).stem}-{counter}{Path(name).suffix}"
        counter += 1
    return target


def discard_gradio_copy(path: Path, upload_root: Path | None) -> None:
    """Delete Gradio's cached copy of an upload (and its now empty folder); nothing outside its folder."""
    if upload_root is None:
        return
    try:
        path.resolve().relative_to(upload_root.resolve())
    except ValueError:
        return
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()  # Gradio keeps each upload in a folder of its own
    except OSError:
        pass


def save_uploads(
    paths: list[str], corpus_dir: Path, max_bytes: int, upload_root: Path | None = None
) -> tuple[list[Path], list[str]]:
    """Copy accepted files into <corpus>/uploads; returns (saved paths, rejection messages)."""
    target_dir = corpus_dir / UPLOAD_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    rejected: list[str] = []
    for path in map(Path, paths):
        try:
            original = path.name
            name = safe_upload_name(original)
            suffix = Path(name).suffix.lower()
            if suffix not in UPLOAD_TYPES:
                rejected.append(f"{original}: type {suffix or '(none)'} is not accepted ({', '.join(UPLOAD_TYPES)})")
                continue
            size = path.stat().st_size
            if size > max_bytes:
                rejected.append(f"{original}: {size:,} bytes is over the {max_bytes:,}-byte limit")
                continue
            target = _free_name(target_dir, name)
            if target.resolve().parent != target_dir.resolve():
                rejected.append(f"{original}: unsafe name")
                continue
            shutil.copyfile(path, target)
            saved.append(target)
        finally:
            discard_gradio_copy(path, upload_root)
    return saved, rejected


@dataclass
class UploadOutcome:
    added: list[str] = field(default_factory=list)  # files that gave at least one article
    articles: int = 0
    moved: list[str] = field(default_factory=list)  # "name: reason" of files moved to .rejected/
    notes: list[str] = field(default_factory=list)  # lines skipped inside added files
    rejected: list[str] = field(default_factory=list)  # refused before copying (type, size, name)
    embedded_chunks: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        out = []
        if self.added:
            out.append(
                f"Added {len(self.added)} file(s) ({self.articles} article(s)): {', '.join(self.added)}. "
                f"Embedded {self.embedded_chunks} passages in {self.seconds:.1f} s; they are searchable now."
            )
        out += [f"Skipped {m}" for m in self.moved]
        out += self.notes
        out += [f"Rejected {r}" for r in self.rejected]
        return out or ["Nothing was added."]


def _reasons(reasons: list[str]) -> str:
    shown = "; ".join(reasons[:MAX_REASONS_SHOWN])
    more = len(reasons) - MAX_REASONS_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def _move_out(path: Path, corpus_dir: Path) -> str:
    folder = corpus_dir / REJECTED_DIR
    folder.mkdir(exist_ok=True)
    target = _free_name(folder, path.name)
    shutil.move(str(path), target)
    return f"{REJECTED_DIR}/{target.name}"


def add_uploads(
    pipeline: Pipeline,
    paths: list[str],
    *,
    upload_root: Path | None,
    progress: Callable[[int, int], None] | None = None,
) -> UploadOutcome:
    settings = pipeline.settings
    corpus = settings.corpus_dir
    saved, rejected = save_uploads(paths, corpus, settings.max_upload_mb * 1024 * 1024, upload_root)
    outcome = UploadOutcome(rejected=rejected)
    kept: dict[str, tuple[Path, int, int]] = {}  # "uploads/<name>" -> (path, articles, lines skipped)
    for path in saved:
        alone = load_corpus(path)  # the file on its own: does it give any article?
        reasons = [s.reason if s.source == path.name else f"{s.source}: {s.reason}" for s in alone.skipped]
        if not alone.documents:
            moved = _move_out(path, corpus)
            outcome.moved.append(f"{path.name}: {_reasons(reasons) or 'no article in it'} (moved to {moved})")
            continue
        kept[f"{UPLOAD_DIR}/{path.name}"] = (path, len(alone.documents), len(alone.skipped))
        if reasons:
            outcome.notes.append(f"In {path.name}, skipped {len(reasons)} line(s): {_reasons(reasons)}")
    if not kept:
        return outcome
    report = pipeline.ingest(progress=progress)
    outcome.embedded_chunks, outcome.seconds = report.embedded_chunks, report.seconds
    # what only the whole corpus shows: a duplicate (id or text) of an article already there
    for source, (path, articles, skipped_alone) in kept.items():
        whole = [s for s in report.skipped if s.source == source]
        lines = [s for s in report.skipped if s.source.startswith(source + ":")]
        duplicates = len(lines) - skipped_alone
        if whole or duplicates >= articles:
            reason = _reasons([s.reason for s in whole] or [s.reason for s in lines][-articles:])
            outcome.moved.append(f"{path.name}: {reason} (moved to {_move_out(path, corpus)})")
            continue
        if duplicates > 0:
            outcome.notes.append(f"In {path.name}, {duplicates} article(s) were already in the corpus")
        outcome.added.append(path.name)
        outcome.articles += articles - duplicates
    return outcome


_FILE_ROUTE = re.compile(r"^(?:/gradio_api)?/file(?:=|/)(?P<path>.+)$")


class UploadShield:
    """ASGI middleware: gradio's file route never serves a file from its upload folder, to anyone.

    Gradio serves every file in that folder to whoever holds its URL (another user included), and
    its ``blocked_paths`` cannot be used for this folder: it also refuses the uploads to the page's
    own events. The page never needs them back: each is copied into the corpus and deleted.
    """

    def __init__(self, app, upload_root: str) -> None:
        self.app = app
        self.upload_root = Path(upload_root).resolve()

    def _is_upload(self, requested: str) -> bool:
        try:
            Path(requested).resolve().relative_to(self.upload_root)
        except (ValueError, OSError):
            return False
        return True

    async def __call__(self, scope, receive, send) -> None:
        match = _FILE_ROUTE.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or not self._is_upload(match["path"]):
            await self.app(scope, receive, send)
            return
        log.info("refused to serve an uploaded file: %s", match["path"])
        body = b'{"detail": "Uploaded files are not served."}'
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})
