"""The passages shown to the model are exact windows of whole sentences around the best one."""

from fakes import HashingEmbedder

from rag.core.types import Chunk, Hit
from rag.steps.focus import focus_hits

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
        [hit(DOC, offset)], embedder.embed_query("berapa rumah banjir Bandung"), embedder, words, 20
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
    assert focus_hits([hit(DOC)], vector, embedder, words, 0)[0].chunk.text == DOC
    assert focus_hits([hit(DOC)], vector, embedder, words, 200)[0].chunk.text == DOC
    assert embedder.calls == []  # nothing to cut, nothing embedded


def test_a_sentence_longer_than_the_budget_is_shown_alone():
    embedder = HashingEmbedder()
    (focused,) = focus_hits([hit(DOC)], embedder.embed_query("banjir rumah Bandung"), embedder, words, 3)
    assert focused.chunk.text == "Menurut wali kota, banjir merendam 1.200 rumah di Bandung."
