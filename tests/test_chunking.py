from hypothesis import given, settings
from hypothesis import strategies as st

from rag.steps.chunking import chunk_document, split_sentences
from rag.steps.corpus import normalize_text
from rag.core.types import Document


def words(text: str) -> int:
    return len(text.split()) + 2


def test_sentences_respect_abbreviations_and_numbers():
    text = "Pembom St. Petersburg ditangkap. Putin memerintahkan 17.600 tentara kembali! Apa itu?"
    spans = [text[s.start : s.end] for s in split_sentences(text)]
    assert spans == ["Pembom St. Petersburg ditangkap.", "Putin memerintahkan 17.600 tentara kembali!", "Apa itu?"]


def test_chunks_overlap_by_whole_sentences_and_respect_the_budget():
    text = " ".join(f"Kalimat nomor {i} berisi beberapa kata." for i in range(30))
    doc = Document("d", text, "t", "d")
    chunks = chunk_document(doc, words, max_tokens=30, overlap_sentences=1)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end  # overlap
        last_sentence = a.text.rsplit(". ", 1)[-1]
        assert b.text.startswith(last_sentence)
    assert all(words(c.text) <= 30 for c in chunks)


def test_paragraph_boundary_is_preferred():
    text = "Satu dua tiga empat lima enam. Tujuh delapan.\n\nParagraf baru di sini. Lagi kalimat."
    chunks = chunk_document(Document("d", text, "t", "d"), words, max_tokens=14, overlap_sentences=1)
    assert chunks[0].text.endswith("Tujuh delapan.")
    assert chunks[1].text.startswith("Paragraf baru")


_sentence = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(_sentence, min_size=1, max_size=8), min_size=1, max_size=6),
    st.integers(min_value=4, max_value=60),
    st.integers(min_value=0, max_value=3),
)
def test_chunk_offsets_are_exact_slices(paragraphs, max_tokens, overlap):
    text = normalize_text("\n\n".join(". ".join(p) for p in paragraphs))
    doc = Document("doc-1", text, "title", "src")
    chunks = chunk_document(doc, words, max_tokens=max_tokens, overlap_sentences=overlap)
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.text and c.text == c.text.strip()
    # every non-space character of the document is in some chunk
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    # ids are stable: chunking again gives the same ids
    assert [c.chunk_id for c in chunk_document(doc, words, max_tokens=max_tokens, overlap_sentences=overlap)] == [
        c.chunk_id for c in chunks
    ]
