"""The index seam's contract, run against every backend: the FAISS folder and Milvus (Milvus Lite in
tmp_path, with hybrid search fused by Milvus and by the Retriever). References: numpy brute force for
dense search, the FAISS folder's bm25s index for BM25, the corpus itself for chunk offsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL_CHUNKS
from fakes import HashingEmbedder

from rag.adapters.langchain import RagRetriever
from rag.core.errors import IndexError_
from rag.pipeline import retrieval_params
from rag.settings import Settings
from rag.steps.bm25 import BM25Index, Tokenizer
from rag.steps.index_store import load_index
from rag.steps.ingest import ingest
from rag.steps.retrieve import Retriever
from rag.steps.store.base import as_fusing
from rag.steps.store.faiss_folder import FaissFolderWriter

pytest.importorskip("pymilvus", reason="the Milvus backend needs the [scale] extra: scripts/setup.sh dev,scale")

BACKENDS = ("faiss", "milvus", "milvus-server-fusion")
QUERIES = ("Lavrov Kerry Paris", "sanksi Medvedev Rusia Rusia", "jet Su-24 kapal perusak", "NATO Brussel Grushko")


class Backend:
    """One backend under test: writes through the seam, opens through the seam."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root

    def writer(self):
        if self.kind == "faiss":
            return FaissFolderWriter(self.root / "index")
        from rag.steps.store.milvus_writer import MilvusWriter

        return MilvusWriter(self.params())

    def params(self):
        from rag.steps.store.milvus_client import MilvusParams

        return MilvusParams(
            uri=str(self.root / "milvus.db"),
            collection="rag_contract",
            dense_index="FLAT",
            server_fusion=self.kind == "milvus-server-fusion",
        )

    def ingest(self, corpus: Path, embedder: HashingEmbedder, **kw):
        return ingest(corpus, self.root / "index", embedder, SMALL_CHUNKS, writer=self.writer(), **kw)

    def open(self, identity):
        if self.kind == "faiss":
            return load_index(self.root / "index", identity)
        from rag.steps.store.milvus_index import open_milvus_index

        return open_milvus_index(self.params(), identity)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path: Path):
    yield Backend(request.param, tmp_path / request.param)
    from rag.steps.store.milvus_client import close_all

    close_all()  # stop this test's Milvus Lite server (threads and memory)


@pytest.fixture
def reference(corpus_dir: Path, tmp_path: Path):
    """The FAISS folder built from the same corpus: the reference for chunks and BM25."""
    embedder = HashingEmbedder()
    ingest(corpus_dir, tmp_path / "reference", embedder, SMALL_CHUNKS)
    return load_index(tmp_path / "reference", embedder.identity())


def _rows_by_chunk(index, found):
    return {index.chunk(row).chunk_id: score for row, score in found}


def test_chunks_and_documents_are_those_of_the_corpus(backend: Backend, corpus_dir: Path, reference):
    embedder = HashingEmbedder()
    report = backend.ingest(corpus_dir, embedder)
    assert report.written and report.full_rebuild and report.total_chunks == len(reference.chunks)
    index = backend.open(embedder.identity())
    assert index.manifest["counts"] == {"documents": 3, "chunks": len(reference.chunks)}
    assert index.dim == embedder.dim
    assert sorted(c.to_json().items() for c in index.chunks) == sorted(c.to_json().items() for c in reference.chunks)
    assert sorted(index.documents) == ["nato.txt", "paris.txt", "sanksi.txt"]
    for chunk in index.chunks:
        assert index.documents[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text
    assert index.documents.get("missing.txt") is None and "missing.txt" not in index.documents
    assert 0 < len(index.sample_texts(2)) <= 2


def test_dense_search_matches_numpy_brute_force(backend: Backend, corpus_dir: Path):
    embedder = HashingEmbedder()
    backend.ingest(corpus_dir, embedder)
    index = backend.open(embedder.identity())
    texts = {c.chunk_id: c.text for c in index.chunks}
    for query in QUERIES:
        vector = embedder.embed_query(query)
        got = _rows_by_chunk(index, index.search_dense(vector, 3))
        expected = {cid: float(embedder._vector(text) @ vector) for cid, text in texts.items()}
        third = sorted(expected.values(), reverse=True)[2]
        assert len(got) == 3
        for cid, score in got.items():
            assert score == pytest.approx(expected[cid], abs=1e-5) and expected[cid] >= third - 1e-6


def test_bm25_scores_equal_the_faiss_folders_bm25s(backend: Backend, corpus_dir: Path, reference):
    embedder = HashingEmbedder()
    backend.ingest(corpus_dir, embedder)
    index = backend.open(embedder.identity())
    for query in (*QUERIES, "dan di yang", "kata-yang-tidak-ada"):
        got = _rows_by_chunk(index, index.search_sparse(query, 10))
        expected = _rows_by_chunk(reference, reference.search_sparse(query, 10))
        assert got.keys() == expected.keys(), query
        for cid, score in got.items():
            assert score == pytest.approx(expected[cid], rel=1e-5), (query, cid)


def test_stored_vectors_are_the_embedders(backend: Backend, corpus_dir: Path):
    embedder = HashingEmbedder()
    backend.ingest(corpus_dir, embedder)
    index = backend.open(embedder.identity())
    found = index.search_dense(embedder.embed_query("Lavrov"), 4)
    rows = [row for row, _ in found]
    vectors = index.vectors_of(rows)
    assert vectors.shape == (len(rows), embedder.dim) and vectors.dtype == np.float32
    for row, vector in zip(rows, vectors, strict=True):
        np.testing.assert_allclose(vector, embedder._vector(index.chunk(row).text), atol=1e-6)
    assert index.vectors_of([]).shape == (0, embedder.dim)


def test_incremental_update_writes_only_what_changed(backend: Backend, corpus_dir: Path):
    embedder = HashingEmbedder()
    first = backend.ingest(corpus_dir, embedder)
    again = backend.ingest(corpus_dir, embedder)
    assert not again.written and again.embedded_chunks == 0 and again.total_chunks == first.total_chunks
    (corpus_dir / "sanksi.txt").write_text("Medvedev berbicara lagi tentang sanksi.", encoding="utf-8")
    (corpus_dir / "nato.txt").unlink()
    (corpus_dir / "baru.txt").write_text("Berita baru tentang Ukraina dan sanksi.", encoding="utf-8")
    update = backend.ingest(corpus_dir, embedder)
    assert not update.full_rebuild
    assert (update.added, update.changed, update.removed) == (["baru.txt"], ["sanksi.txt"], ["nato.txt"])
    assert update.embedded_chunks == 2
    index = backend.open(embedder.identity())
    ids = [c.chunk_id for c in index.chunks]
    assert len(ids) == len(set(ids)) == update.total_chunks == index.manifest["counts"]["chunks"]
    assert {c.doc_id for c in index.chunks} == {"paris.txt", "sanksi.txt", "baru.txt"}
    assert sorted(index.documents) == ["baru.txt", "paris.txt", "sanksi.txt"]
    assert index.documents["sanksi.txt"].text == "Medvedev berbicara lagi tentang sanksi."
    # BM25 after the update equals a FAISS folder built from scratch on the new corpus
    fresh = backend.root / "fresh"
    ingest(corpus_dir, fresh, embedder, SMALL_CHUNKS, writer=FaissFolderWriter(fresh))
    reference = load_index(fresh, embedder.identity())
    for query in ("sanksi Medvedev", "Ukraina berita", "Lavrov Paris"):
        got = _rows_by_chunk(index, index.search_sparse(query, 10))
        expected = _rows_by_chunk(reference, reference.search_sparse(query, 10))
        assert got.keys() == expected.keys()
        for cid, score in got.items():
            assert score == pytest.approx(expected[cid], rel=0.06), (query, cid)  # avgdl may lag by <= 5 %


def test_other_embedder_is_refused_with_both_sides_and_the_fix(backend: Backend, corpus_dir: Path):
    backend.ingest(corpus_dir, HashingEmbedder())
    with pytest.raises(IndexError_, match=r"name: index='hashing-test' configured='other'.*--rebuild"):
        backend.open(HashingEmbedder(name="other").identity())
    rebuilt = backend.ingest(corpus_dir, HashingEmbedder(name="other"))
    assert rebuilt.full_rebuild and rebuilt.rebuild_reason == "embedder changed"
    assert backend.open(HashingEmbedder(name="other").identity()).manifest["embedder"]["name"] == "other"


def test_a_missing_index_names_the_command_that_builds_it(backend: Backend):
    with pytest.raises(IndexError_, match="rag ingest"):
        backend.open(HashingEmbedder().identity())


def test_retriever_and_langchain_work_unchanged(backend: Backend, corpus_dir: Path, reference):
    embedder = HashingEmbedder()
    backend.ingest(corpus_dir, embedder)
    index = backend.open(embedder.identity())
    assert (as_fusing(index) is not None) == (backend.kind == "milvus-server-fusion")
    params = retrieval_params(Settings(k=3).validated())
    retriever, expected = Retriever(index, embedder, params), Retriever(reference, embedder, params)
    for query in QUERIES:
        for mode in ("dense", "bm25", "hybrid"):
            got = retriever.search(query, 3, mode)
            want = expected.search(query, 3, mode)
            assert len(got.hits) == len(want.hits) > 0
            assert got.vectors.shape == want.vectors.shape
            if mode != "hybrid" or backend.kind != "milvus-server-fusion":  # server fusion normalises otherwise
                assert [round(h.score, 4) for h in got.hits] == [round(h.score, 4) for h in want.hits], (query, mode)
            assert got.evidence == pytest.approx(want.evidence, abs=1e-5)
    documents = RagRetriever(retriever=retriever, k=2, mode="hybrid").invoke("Lavrov Kerry Paris")
    assert len(documents) == 2 and documents[0].metadata["doc_id"] == "paris.txt"


def test_bm25_reference_is_bm25s():
    """The sparse vectors reproduce bm25s on a corpus with repeated and missing terms."""
    from rag.steps.store.sparse import document_weights, query_weights, term_counts, term_id

    texts = ["Rusia dan NATO bertemu di Brussel", "Kerry bertemu Lavrov di Paris", "NATO NATO Brussel Rusia", ""]
    tokenizer = Tokenizer(stem=True, stopwords=True)
    bm25 = BM25Index.build(texts, tokenizer)
    counts = [term_counts(tokenizer(t)) for t in texts]
    avgdl = sum(length for _, length in counts) / len(counts)
    df: dict[int, int] = {}
    for tf, _ in counts:
        for t in tf:
            df[t] = df.get(t, 0) + 1
    for query in ("NATO Brussel", "Lavrov Lavrov Paris", "tidak ada"):
        weights = query_weights(tokenizer(query), df, len(texts))
        got = [
            sum(w * document_weights(tf, length, avgdl, 0.9, 0.4).get(t, 0.0) for t, w in weights.items())
            for tf, length in counts
        ]
        expected = {row: score for row, score in bm25.search(query, 10)}
        assert got == pytest.approx([expected.get(i, 0.0) for i in range(len(texts))], rel=1e-5)
    assert term_id("rusia") == term_id("rusia") != term_id("nato")
