"""The passages shown to the model are exact windows of whole sentences around the best one."""

import numpy as np
import pytest
from fakes import HashingEmbedder

from rag.core.types import Chunk, Hit
from rag.steps.focus import SentenceVectors, close_to_best, focus_hits, merge_overlapping

DOC = (
    "Pendahuluan tentang cuaca di kota itu. Hujan turun sejak pagi. "
    "Menurut wali kota, banjir merendam 1.200 rumah di Bandung. Warga mengungsi ke masjid. "
    "Sekolah diliburkan dua hari. Listrik padam di tiga kecamatan."
)


def words(text: str) -> int:
    return len(text.split())


def hit(text: str, start: int = 0) -> Hit:
    chunk = Chunk("c1", "doc.txt", start, start + len(text), text, "Banjir")
    return Hit(chunk, 1.0, 1, "hybrid")


def test_long_chunk_is_cut_to_the_sentences_around_the_best_one():
    embedder = HashingEmbedder()
    offset = 40  # the chunk starts at character 40 of its document
    document = "x" * offset + DOC
    (focused,) = focus_hits(
        [hit(DOC, offset)], embedder.embed_query("berapa rumah banjir Bandung"), SentenceVectors(embedder), words, 20
    )
    chunk = focused.chunk
    assert "banjir merendam 1.200 rumah di Bandung" in chunk.text
    assert words(chunk.text) <= 20
    assert chunk.text.startswith("Hujan turun")  # the sentence before the best one comes first
    assert document[chunk.start : chunk.end] == chunk.text  # still an exact span of the document
    assert chunk.chunk_id == "c1" and focused.rank == 1


def test_short_chunks_and_zero_budget_keep_the_whole_chunk():
    embedder = HashingEmbedder()
    vector = embedder.embed_query("banjir")
    kept = SentenceVectors(embedder)
    assert focus_hits([hit(DOC)], vector, kept, words, 0)[0].chunk.text == DOC
    assert focus_hits([hit(DOC)], vector, kept, words, 200)[0].chunk.text == DOC
    assert embedder.calls == []  # nothing to cut, nothing embedded


def test_a_sentence_longer_than_the_budget_is_shown_alone():
    embedder = HashingEmbedder()
    (focused,) = focus_hits(
        [hit(DOC)], embedder.embed_query("banjir rumah Bandung"), SentenceVectors(embedder), words, 3
    )
    assert focused.chunk.text == "Menurut wali kota, banjir merendam 1.200 rumah di Bandung."


def test_sentence_vectors_are_computed_once_per_passage_and_the_oldest_dropped():
    embedder = HashingEmbedder()
    kept = SentenceVectors(embedder, max_sentences=7)
    question = embedder.embed_query("berapa rumah banjir Bandung")
    first = focus_hits([hit(DOC)], question, kept, words, 20)
    assert embedder.calls == [6]  # the six sentences, in one batch (a batch a passage)
    assert focus_hits([hit(DOC)], question, kept, words, 20) == first and embedder.calls == [6]  # kept
    other = "Satu kalimat lain di sini. Dan kalimat kedua yang cukup panjang juga."
    kept.add([other, other])
    assert embedder.calls == [6, 2] and len(kept) == 1  # 6 + 2 sentences > 7: the least recent dropped
    spans, vectors = kept.of([other])[0]
    assert [other[s.start : s.end] for s in spans] == ["Satu kalimat lain di sini.", other[27:]]
    assert vectors.shape == (2, embedder.dim) and embedder.calls == [6, 2]


def scored(chunk_id: str, rank: int, cosine: float | None) -> Hit:
    chunk = Chunk(chunk_id, "doc.txt", 0, len(DOC), DOC, "Banjir")
    return Hit(chunk, 1.0 / rank, rank, "hybrid", details={} if cosine is None else {"cosine": cosine})


def test_only_passages_close_to_the_best_one_are_shown():
    hits = [
        scored("a", 1, 0.86),
        scored("b", 2, 0.88),
        scored("c", 3, 0.85),
        scored("d", 4, None),
        scored("e", 5, 0.87),
    ]
    kept = [h.chunk.chunk_id for h in close_to_best(hits, 0.02)]
    assert kept == ["a", "b", "d", "e"]  # rank order kept; the best is "b" (0.88), "c" is 0.03 below it
    assert [h.chunk.chunk_id for h in close_to_best(hits, 0.0)] == ["b", "d"]
    assert close_to_best(hits, 1.0) == hits
    assert close_to_best([scored("x", 1, None)], 0.0)[0].chunk.chunk_id == "x"  # nothing to compare: all kept


def test_the_answerer_shows_only_the_passages_close_to_the_best_one(tmp_path):
    from fakes import EchoChatModel
    from test_ui import build_pipeline

    from rag.core.errors import ConfigError
    from rag.settings import Settings

    question = "Siapa yang bertemu di Paris?"
    (tmp_path / "all").mkdir()
    (tmp_path / "best").mkdir()
    every = build_pipeline(tmp_path / "all", EchoChatModel(), k=4, passage_margin=1.0).answerer().prepare(question)
    best = build_pipeline(tmp_path / "best", EchoChatModel(), k=4, passage_margin=0.0).answerer().prepare(question)
    assert every.gate.passed and best.gate.passed
    cosines = [h.details["cosine"] for h in every.retrieval.hits]
    assert len(every.shown) == 4 and len(set(cosines)) > 1  # a margin of 1 shows all k
    assert [h.chunk.chunk_id for h in best.shown] == [
        h.chunk.chunk_id for h in every.retrieval.hits if h.details["cosine"] == max(cosines)
    ]
    with pytest.raises(ConfigError, match="passage_margin"):
        Settings(passage_margin=-0.1).validated()


def test_a_reply_sentence_is_compared_with_each_sentence_its_passage_shows(tmp_path):
    """Grounding's closeness: the chunk's own vector and those of the sentences the shown window holds,
    not of the sentences cut away (the model did not read them)."""
    from fakes import EchoChatModel
    from test_ui import build_pipeline

    from rag.steps.answer.answerer import _shown_vectors

    pipeline = build_pipeline(tmp_path, EchoChatModel(), k=3, chunk_tokens=80, passage_tokens=20)
    answerer = pipeline.answerer()
    prepared = answerer.prepare("Siapa yang bertemu di Paris?")
    rows = _shown_vectors(prepared, answerer.embedder, answerer.sentences)
    stored = {h.chunk.chunk_id: (h.chunk.text, v) for h, v in zip(prepared.retrieval.hits, prepared.retrieval.vectors)}
    cut = 0
    for hit, got in zip(prepared.shown, rows, strict=True):
        text, vector = stored[hit.chunk.chunk_id]
        ((spans, vectors),) = answerer.sentences.of([text])
        inside = [i for i, s in enumerate(spans) if text[s.start : s.end] in hit.chunk.text]  # unique here
        assert np.allclose(got[0], vector)
        assert np.allclose(got[1:], vectors[inside])
        cut += len(spans) - len(inside)
        said = text[spans[inside[-1]].start : spans[inside[-1]].end]  # a claim worded as one shown sentence
        assert float(np.max(got @ answerer.embedder.embed_query(said))) == pytest.approx(1.0, abs=1e-5)
    assert cut > 0  # some passage was cut to a window: its other sentences are not compared


def test_windows_of_one_document_that_overlap_are_shown_once():
    """Chunks overlap by a sentence: the model must not read the same sentence as two passages."""

    def window(chunk_id: str, doc_id: str, start: int, end: int, rank: int) -> Hit:
        return Hit(Chunk(chunk_id, doc_id, start, end, DOC[start:end], "Banjir"), 1.0 / rank, rank, "hybrid")

    mayor = DOC.index("Menurut")
    shelter = DOC.index("Warga")
    schools = DOC.index("Sekolah")
    inside = window("c2", "doc.txt", mayor, shelter - 1, 1)  # one sentence
    around = window("c1", "doc.txt", 0, schools - 1, 2)  # holds it
    other_doc = window("c9", "other.txt", mayor, shelter - 1, 3)  # same offsets, another document
    later = window("c3", "doc.txt", schools, len(DOC), 4)  # starts where `around` ends: no overlap
    assert [h.chunk.chunk_id for h in merge_overlapping([inside, around, other_doc, later])] == ["c2", "c9", "c3"]
    first = merge_overlapping([inside, around])[0].chunk  # the better-ranked window's place and identity
    assert (first.chunk_id, first.start, first.end, first.text) == ("c2", 0, schools - 1, DOC[: schools - 1])

    bridge = window("c4", "doc.txt", mayor, schools + 10, 5)  # overlaps both kept windows of doc.txt
    shown = merge_overlapping([inside, around, other_doc, later, bridge])
    assert [h.chunk.chunk_id for h in shown] == ["c2", "c9"]
    whole = shown[0].chunk
    assert (whole.start, whole.end) == (0, len(DOC)) and whole.text == DOC  # still an exact span
    assert shown[1] == other_doc
