import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fakes import HashingEmbedder

from rag.core.errors import IndexError_
from rag.steps import index_store
from rag.steps.index_store import load_index
from rag.steps.ingest import IngestParams, ingest

PARAMS = IngestParams(chunk_tokens=40, overlap_sentences=1, bm25_stem=False, bm25_stopwords=True)


def build(corpus: Path, index: Path, embedder=None, **kw):
    return ingest(corpus, index, embedder or HashingEmbedder(), PARAMS, **kw)


def test_manifest_describes_the_index(corpus_dir: Path, tmp_path: Path):
    index = tmp_path / "index"
    report = build(corpus_dir, index)
    assert report.written and report.total_documents == 3
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["format"] == "rag-index" and manifest["format_version"] == index_store.FORMAT_VERSION
    assert manifest["embedder"]["name"] == "hashing-test" and manifest["embedder"]["dim"] == 256
    assert manifest["chunker"]["max_tokens"] == 40
    assert set(manifest["bm25"]) >= {"k1", "b", "stem", "stopwords", "tokenizer"}
    assert set(manifest["documents"]) == {"paris.txt", "nato.txt", "sanksi.txt"}
    assert all(len(d["sha256"]) == 64 for d in manifest["documents"].values())
    assert manifest["counts"]["chunks"] == report.total_chunks
    assert "faiss-cpu" in manifest["versions"]
    loaded = load_index(index, HashingEmbedder().identity())
    for chunk in loaded.chunks:
        assert loaded.documents[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text


def test_no_pickle_on_disk(corpus_dir: Path, tmp_path: Path):
    build(corpus_dir, tmp_path / "index")
    for path in (tmp_path / "index").rglob("*"):
        if path.suffix == ".npy":
            np.load(path, allow_pickle=False)  # raises if the array needed pickle
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80\x04"), f"{path} looks like a pickle"


def test_incremental_update_embeds_only_what_changed(corpus_dir: Path, tmp_path: Path):
    index = tmp_path / "index"
    embedder = HashingEmbedder()
    first = build(corpus_dir, index, embedder)
    assert first.full_rebuild and first.embedded_chunks == first.total_chunks
    again = build(corpus_dir, index, embedder)
    assert not again.written and again.embedded_chunks == 0
    (corpus_dir / "sanksi.txt").write_text("Medvedev berbicara lagi tentang sanksi.", encoding="utf-8")
    (corpus_dir / "nato.txt").unlink()
    (corpus_dir / "baru.txt").write_text("Berita baru tentang Ukraina.", encoding="utf-8")
    check = build(corpus_dir, index, embedder, check_only=True)
    assert (
        check.stale
        and check.added == ["baru.txt"]
        and check.changed == ["sanksi.txt"]
        and check.removed == ["nato.txt"]
    )
    update = build(corpus_dir, index, embedder)
    assert not update.full_rebuild
    assert update.embedded_chunks == 2  # one chunk each for the new and the changed document
    loaded = load_index(index, embedder.identity())
    assert set(loaded.documents) == {"paris.txt", "sanksi.txt", "baru.txt"}
    # vectors of the unchanged document were kept, row-aligned with their chunks
    for row, chunk in enumerate(loaded.chunks):
        np.testing.assert_allclose(loaded.vectors.reconstruct(row), embedder._vector(chunk.text), atol=1e-6)
    assert not build(corpus_dir, index, embedder, check_only=True).stale


def test_other_embedder_is_refused_with_the_fix(corpus_dir: Path, tmp_path: Path):
    index = tmp_path / "index"
    build(corpus_dir, index)
    with pytest.raises(IndexError_, match=r"name: index='hashing-test' configured='other'.*--rebuild"):
        load_index(index, HashingEmbedder(name="other").identity())
    with pytest.raises(IndexError_, match="dim: index=256 configured=128"):
        load_index(index, HashingEmbedder(dim=128).identity())
    # ingest with a new embedder rebuilds everything
    report = build(corpus_dir, index, HashingEmbedder(name="other"))
    assert report.full_rebuild and report.rebuild_reason == "embedder changed"


def _generation(index: Path) -> Path:
    return index / json.loads((index / "manifest.json").read_text())["generation"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda idx: (idx / "manifest.json").unlink(), "manifest.json is missing"),
        (lambda idx: (idx / "manifest.json").write_text("{not json"), "is corrupt"),
        (lambda idx: (_generation(idx) / "vectors.faiss").unlink(), "is missing"),
        (lambda idx: _truncate(_generation(idx) / "vectors.faiss"), "truncated"),
        (lambda idx: _rewrite_manifest(idx, format_version=0), "format version 0"),
        (lambda idx: _garble(_generation(idx) / "vectors.faiss"), "corrupt"),
        (lambda idx: _garble(_generation(idx) / "chunks.jsonl"), "corrupt"),
    ],
)
def test_damaged_index_gives_a_clear_error(corpus_dir: Path, tmp_path: Path, damage, message):
    index = tmp_path / "index"
    build(corpus_dir, index)
    damage(index)
    with pytest.raises(IndexError_, match=message) as info:
        load_index(index, HashingEmbedder().identity())
    assert "rag ingest" in str(info.value)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[: min(64, len(data))] = b"\xff" * min(64, len(data))
    path.write_bytes(bytes(data))


def _rewrite_manifest(index: Path, **changes) -> None:
    manifest = json.loads((index / "manifest.json").read_text())
    manifest.update(changes)
    (index / "manifest.json").write_text(json.dumps(manifest))


def test_interrupted_write_keeps_the_previous_index(corpus_dir: Path, tmp_path: Path, monkeypatch):
    index = tmp_path / "index"
    build(corpus_dir, index)
    before = load_index(index, HashingEmbedder().identity())
    (corpus_dir / "baru.txt").write_text("Berita baru.", encoding="utf-8")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(index_store.BM25Index, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        build(corpus_dir, index)
    after = load_index(index, HashingEmbedder().identity())
    assert [c.chunk_id for c in after.chunks] == [c.chunk_id for c in before.chunks]
    assert not [p for p in index.iterdir() if p.name.startswith(".tmp-")]


def test_empty_corpus_builds_an_empty_index(tmp_path: Path):
    (tmp_path / "corpus").mkdir()
    report = build(tmp_path / "corpus", tmp_path / "index")
    assert report.total_chunks == 0
    loaded = load_index(tmp_path / "index", HashingEmbedder().identity())
    assert loaded.chunks == []
    shutil.rmtree(tmp_path / "index")


def test_large_index_is_approximate_with_exact_rescoring(corpus_dir: Path, tmp_path: Path, monkeypatch):
    """Above EXACT_MAX_CHUNKS: HNSW over 8-bit vectors, floats memory-mapped for rescoring; the
    results keep exact scores, and an incremental update starts from the exact floats."""
    monkeypatch.setattr(index_store, "EXACT_MAX_CHUNKS", 2)
    index = tmp_path / "index"
    embedder = HashingEmbedder()
    build(corpus_dir, index, embedder)
    manifest = json.loads((index / "manifest.json").read_text())
    assert manifest["vectors"]["faiss_type"] == "IndexHNSWSQ" and manifest["vectors"]["exact_rescoring"]
    loaded = load_index(index, embedder.identity())
    assert isinstance(loaded.exact, np.memmap)
    floats = np.asarray(loaded.exact)
    assert np.allclose(floats, embedder.embed_documents([c.text for c in loaded.chunks]), atol=1e-6)
    query = embedder.embed_query("Lavrov Kerry Paris")
    exact_scores = floats @ query
    hits = index_store.search_vectors(loaded.vectors, loaded.exact, query, 3)
    assert [row for row, _ in hits] == list(np.argsort(-exact_scores, kind="stable")[:3])
    assert [score for _, score in hits] == pytest.approx(sorted(exact_scores, reverse=True)[:3], abs=1e-5)
    assert np.array_equal(index_store.stored_vectors(loaded), floats)
    assert np.array_equal(loaded.vector(1), floats[1])


@pytest.mark.parametrize("damage", ["missing", "truncated", "wrong shape"])
def test_damaged_rescoring_vectors_give_a_clear_error(corpus_dir: Path, tmp_path: Path, monkeypatch, damage):
    monkeypatch.setattr(index_store, "EXACT_MAX_CHUNKS", 2)
    index = tmp_path / "index"
    build(corpus_dir, index)
    path = _generation(index) / "vectors.npy"
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        _truncate(path)
    else:
        np.save(path, np.zeros((2, 256), dtype=np.float32))
        _rewrite_manifest(
            index,
            files={**json.loads((index / "manifest.json").read_text())["files"]} | {"vectors.npy": path.stat().st_size},
        )
    with pytest.raises(IndexError_, match="vectors.npy") as info:
        load_index(index, HashingEmbedder().identity())
    assert "rag ingest" in str(info.value)


def test_unchanged_ingest_removes_leftovers_of_an_interrupted_run(corpus_dir: Path, tmp_path: Path):
    index = tmp_path / "index"
    build(corpus_dir, index)
    (index / ".tmp-gen-20260101T000000-deadbeef").mkdir()
    (index / "gen-20260101T000000-deadbeef").mkdir()
    report = build(corpus_dir, index)
    assert not report.written
    assert sorted(p.name for p in index.iterdir()) == sorted(["manifest.json", _generation(index).name])
    load_index(index, HashingEmbedder().identity())
