import math
from pathlib import Path

import numpy as np
import pytest
from fakes import HashingEmbedder

from rag.adapters.langchain import RagRetriever
from rag.core.types import Chunk
from rag.pipeline import retrieval_params
from rag.settings import Settings
from rag.steps.bm25 import BM25Index, Tokenizer
from rag.steps.index_store import load_index, search_vectors
from rag.steps.ingest import IngestParams, ingest
from rag.steps.retrieve import Retriever

PARAMS = IngestParams(chunk_tokens=40, overlap_sentences=1, bm25_stem=False, bm25_stopwords=True)


@pytest.fixture
def retriever(corpus_dir: Path, tmp_path: Path) -> Retriever:
    embedder = HashingEmbedder()
    ingest(corpus_dir, tmp_path / "index", embedder, PARAMS)
    return Retriever(
        load_index(tmp_path / "index", embedder.identity()), embedder, retrieval_params(Settings(k=3).validated())
    )


def test_dense_matches_numpy_brute_force(retriever: Retriever):
    query = "Lavrov Kerry Paris intelijen"
    n = retriever.index.vectors.ntotal
    matrix = retriever.index.vectors.reconstruct_n(0, n)
    expected = np.argsort(-(matrix @ retriever.embedder.embed_query(query)), kind="stable")[:5]
    got = [row for row, _ in search_vectors(retriever.index.vectors, None, retriever.embedder.embed_query(query), 5)]
    assert sorted(got) == sorted(int(i) for i in expected)


def reference_bm25(docs: list[list[str]], query: list[str], k1: float, b: float) -> list[float]:
    """Lucene BM25 (the variant bm25s implements by default)."""
    n = len(docs)
    avg = sum(len(d) for d in docs) / n
    scores = []
    for d in docs:
        s = 0.0
        for term in set(query):
            df = sum(term in other for other in docs)
            if df == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = d.count(term)
            s += idf * tf / (tf + k1 * (1 - b + b * len(d) / avg))
        scores.append(s)
    return scores


def test_bm25_matches_a_reference_implementation():
    texts = [
        "Rusia dan NATO bertemu di Brussel",
        "Kerry bertemu Lavrov di Paris",
        "NATO NATO Brussel Rusia",
        "sanksi merusak hubungan Rusia",
    ]
    tokenizer = Tokenizer(stem=False, stopwords=False)
    index = BM25Index.build(texts, tokenizer)
    got = dict(index.search("NATO Rusia Brussel", 4))
    expected = reference_bm25(
        [tokenizer(t) for t in texts], tokenizer("NATO Rusia Brussel"), index.model.k1, index.model.b
    )
    for row, score in enumerate(expected):
        assert got.get(row, 0.0) == pytest.approx(score, rel=1e-4)


def test_modes_and_hit_fields(retriever: Retriever):
    for mode in ("dense", "bm25", "hybrid"):
        hits = retriever.search("Grushko NATO agenda", 3, mode).hits
        assert hits and hits[0].chunk.doc_id == "nato.txt"
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert all(h.method == mode for h in hits)
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    hybrid = retriever.search("Grushko NATO agenda", 3, "hybrid").hits[0]
    assert {"dense", "bm25"} <= set(hybrid.details)


def test_rrf_fusion_is_available(retriever: Retriever):
    rrf = Retriever(retriever.index, retriever.embedder, retrieval_params(Settings(k=3, fusion="rrf").validated()))
    assert rrf.search("Medvedev sanksi CNBC", 1).hits[0].chunk.doc_id == "sanksi.txt"


def test_near_duplicates_collapse(tmp_path: Path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    text = "Kerry dan Lavrov bertemu di Paris selama tiga jam untuk membahas ISIS."
    (corpus / "a.txt").write_text(text, encoding="utf-8")
    (corpus / "b.txt").write_text(text + " Foto: Reuters.", encoding="utf-8")
    (corpus / "c.txt").write_text("Rusia dan NATO bertemu di Brussel.", encoding="utf-8")
    embedder = HashingEmbedder()
    ingest(corpus, tmp_path / "i", embedder, PARAMS)
    r = Retriever(
        load_index(tmp_path / "i", embedder.identity()), embedder, retrieval_params(Settings(k=3).validated())
    )
    docs = [h.chunk.doc_id for h in r.search("Kerry Lavrov Paris", 3).hits]
    assert len([d for d in docs if d in ("a.txt", "b.txt")]) == 1


def test_langchain_retriever_wraps_the_same_search(retriever: Retriever):
    lc = RagRetriever(retriever=retriever, k=2, mode="hybrid")
    docs = lc.invoke("Su-24 Donald Cook Baltik")
    assert docs[0].metadata["doc_id"] == "nato.txt"
    chunk = Chunk(
        docs[0].metadata["chunk_id"],
        "nato.txt",
        docs[0].metadata["start"],
        docs[0].metadata["end"],
        docs[0].page_content,
    )
    assert retriever.index.documents["nato.txt"].text[chunk.start : chunk.end] == chunk.text


def test_bm25_counts_less_for_a_question_in_another_language(retriever: Retriever):
    assert retriever.corpus_language == "id"
    full = retriever.params.bm25_weight
    assert retriever.bm25_weight_for("Siapa duta besar Rusia untuk NATO?") == full
    assert retriever.bm25_weight_for("Who is the Russian ambassador to NATO?") == full * 0.5


def test_a_search_carries_its_query_vector_and_each_hits_vector_and_cosine(retriever: Retriever, monkeypatch):
    calls: list[str] = []
    real = retriever.embedder.embed_query
    monkeypatch.setattr(retriever.embedder, "embed_query", lambda text: calls.append(text) or real(text))
    result = retriever.search("Grushko NATO agenda", 3, "hybrid")
    assert calls == ["Grushko NATO agenda"]  # embedded once, kept nowhere but in the result
    np.testing.assert_allclose(result.query_vector, real("Grushko NATO agenda"))
    assert result.vectors.shape == (len(result.hits), retriever.embedder.dim)
    for hit, vector in zip(result.hits, result.vectors, strict=True):
        assert hit.details["cosine"] == pytest.approx(float(vector @ result.query_vector), abs=1e-6)
    assert result.evidence == pytest.approx(max(h.details["cosine"] for h in result.hits), abs=1e-6)


def test_a_bm25_search_without_a_vector_embeds_nothing(retriever: Retriever, monkeypatch):
    monkeypatch.setattr(retriever.embedder, "embed_query", lambda text: pytest.fail("embedded"))
    result = retriever.search("Grushko NATO agenda", 3, "bm25")
    assert result.hits and result.query_vector is None and result.evidence == 0.0
