"""The passages shown to the model are exact windows of whole sentences around the best one."""

from fakes import HashingEmbedder

from rag.core.types import Chunk, Hit
from rag.steps.focus import SentenceVectors, focus_hits

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
