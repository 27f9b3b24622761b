from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from rag.settings import REPO_ROOT, Settings
from rag.steps.ingest import IngestParams

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

SHARED = REPO_ROOT.parent / "shared"
# chunks small enough that the three short test articles make several each
SMALL_CHUNKS = IngestParams(chunk_tokens=40, overlap_sentences=1, bm25_stem=False, bm25_stopwords=True)
_real_connect = socket.socket.connect


def _loopback_only(self, address):  # type: ignore[no-untyped-def]
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host in ("localhost", "::1") or host.startswith("127.") or host.startswith("/")):
        return _real_connect(self, address)
    raise RuntimeError(f"network access blocked in tests: {address!r}")


@pytest.fixture(autouse=True)
def block_network(monkeypatch):
    """An accidental download fails loudly here, not on a user's laptop."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        corpus_dir=tmp_path / "corpus",
        index_dir=tmp_path / "index",
        cache_dir=Path(os.environ.get("RAG_CACHE_DIR", str(Path.home() / ".cache" / "rag"))),
    ).validated()


ARTICLES = {
    "paris.txt": (
        "Lavrov dan Kerry Bertemu di Paris\n\n"
        "Menteri Luar Negeri Rusia Sergey Lavrov bertemu Menteri Luar Negeri AS John Kerry di Paris pada Selasa. "
        "Pertemuan itu berlangsung selama tiga jam.\n\n"
        "Kedua negara sepakat berbagi informasi intelijen mengenai militan ISIS. "
        "Sekitar 500 warga Rusia ikut berperang bersama ISIS, kata Kerry."
    ),
    "nato.txt": (
        "NATO dan Rusia Bertemu di Brussel\n\n"
        "Rusia dan NATO bertemu di Brussel pada 20 April setelah dua tahun. "
        "Duta Besar Rusia untuk NATO Alexander Grushko mengatakan tidak ada agenda positif.\n\n"
        "Sebuah jet Su-24 Rusia terbang dalam jarak 10 meter dari kapal perusak AS Donald Cook di Laut Baltik."
    ),
    "sanksi.txt": (
        "Medvedev: Sanksi Merusak Hubungan\n\n"
        "Perdana Menteri Rusia Dmitri Medvedev mengatakan sanksi Barat merusak hubungan Rusia dan Amerika Serikat. "
        "Ia berbicara dalam wawancara dengan saluran televisi CNBC."
    ),
}


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, text in ARTICLES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def fake_retriever(corpus: Path, index: Path, k: int = 3):
    """A real Retriever over a real index of ``corpus``, embedded by the hashing fake."""
    from fakes import HashingEmbedder

    from rag.pipeline import retrieval_params
    from rag.steps.index_store import load_index
    from rag.steps.ingest import ingest
    from rag.steps.retrieve import Retriever

    embedder = HashingEmbedder()
    ingest(corpus, index, embedder, SMALL_CHUNKS)
    return Retriever(load_index(index, embedder.identity()), embedder, retrieval_params(Settings(k=k).validated()))


def run_rag(*args: str, index: Path, corpus: Path | None = None, stdin: str = ""):
    """The `rag` command in a subprocess, offline, on the given index (and corpus)."""
    import subprocess
    import sys

    env = {**os.environ, "RAG_INDEX_DIR": str(index), "HF_HUB_OFFLINE": "1"}
    if corpus is not None:
        env["RAG_CORPUS_DIR"] = str(corpus)
    return subprocess.run(
        [sys.executable, "-m", "rag", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=900,
    )
