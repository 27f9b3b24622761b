import re

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.core.types import Document
from rag.steps.chunking import _ABBREVIATIONS, Span, _split_long, chunk_document, split_sentences
from rag.steps.corpus import normalize_text


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


# --- the same sentences as the old whole-line search, in linear time ---

_OLD_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+)")
_OLD_WORD_BEFORE = re.compile(r"([\w.]+)[.!?…]*[\"'”’)\]]*$")


def reference_split_sentences(text: str) -> list[tuple[int, int, int]]:
    """The old split_sentences: for each end mark it searched ``line[:end]``, quadratic in a line's length."""
    spans = []
    offset = 0
    for paragraph, line in enumerate(text.split("\n")):
        line_start, offset, start = offset, offset + len(line) + 1, 0
        ends = []
        for m in _OLD_SENTENCE_END.finditer(line):
            word = _OLD_WORD_BEFORE.search(line[: m.end()])
            token = word.group(1).lower().rstrip(".") if word else ""
            if not (token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())):
                ends.append(m.end())
        for end in ends + [len(line)]:
            piece = line[start:end]
            if piece.strip():
                s = line_start + start + len(piece) - len(piece.lstrip())
                spans.append((s, s + len(piece.strip()), paragraph))
            start = end
    return spans


_piece = st.one_of(
    st.sampled_from(["St", "dr", "a", "U.S", "e.g", "Jan", "sept", "kata", "x1", "_", "İ", "abcdef", "..", "…"]),
    st.text(alphabet=".!?…\"')]”’ \t\nabX", max_size=6),
    st.text(max_size=4),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_piece, max_size=60).map("".join))
def test_sentences_are_those_of_the_whole_line_search(text):
    assert [(s.start, s.end, s.paragraph) for s in split_sentences(text)] == reference_split_sentences(text)


def test_work_is_linear_in_the_length_of_a_line():
    sentence = "Dr. Lavrov dan Kerry (AS) bertemu di St. Petersburg selama 3,5 jam... Mereka sepakat!?"
    small = " ".join([sentence] * 115)  # about 10 kB, one line
    big = " ".join([small] * 20)  # about 200 kB, one line: the old search took ~30 s on it
    handed: list[int] = []

    def counter(text: str) -> int:
        handed.append(len(text))
        return len(text.split()) + 2

    def tokeniser_chars(text: str) -> int:
        handed.clear()
        chunk_document(Document("d", text, "t", "d"), counter, max_tokens=60)
        return sum(handed)

    # work counted, not timed (wall clock belongs to scripts/bench_long_text.py)
    assert tokeniser_chars(big) < 5 * 20 * tokeniser_chars(small)
    assert len(split_sentences(big)) == 20 * len(split_sentences(small))


def test_a_word_longer_than_the_budget_is_cut_and_every_chunk_fits():
    def chars(text: str) -> int:
        return len(text) // 4 + 1

    text = "Awal kalimat. " + "x" * 100_000 + " akhir " + "kata " * 2_000
    doc = Document("d", text.strip(), "t", "d")
    chunks = chunk_document(doc, chars, max_tokens=100)
    assert all(doc.text[c.start : c.end] == c.text and chars(c.text) <= 100 for c in chunks)
    covered = sum(c.end - c.start for c in chunks)
    assert covered >= len(doc.text.replace(" ", ""))


def reference_split_long(text: str, count, max_tokens: int) -> list[tuple[int, int]]:
    """The old one-count-per-word packing of an over-long sentence (quadratic in a piece's words)."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    pieces, i = [], 0
    while i < len(words):
        j = i + 1
        while j < len(words) and count(text[words[i][0] : words[j][1]]) <= max_tokens:
            j += 1
        pieces.append((words[i][0], words[j - 1][1]))
        i = j
    return pieces


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=300), st.integers(2, 40))
def test_galloping_packs_words_like_the_word_by_word_scan(lengths, max_tokens):
    text = " ".join("k" * n for n in lengths)

    def count(t: str) -> int:
        return len(t.split()) + len(t) // 20

    if count(text) <= max_tokens:
        return
    got = [(s.start, s.end) for s in _split_long(text, Span(0, len(text), 0), count, max_tokens)]
    want = reference_split_long(text, count, max_tokens)
    if got != want:  # only where a single word alone is over the budget, now cut at characters
        assert any(count(text[a:b]) > max_tokens and " " not in text[a:b] for a, b in want)


# --- each sentence counted once, in batches; chunks packed by the sum of the counts ---

_PROSE = "\n\n".join(
    " ".join(f"Kalimat {p}.{i} menyebut Dr. Lavrov dan {i * 7} tentara di St. Petersburg." for i in range(12))
    for p in range(6)
)


def test_batched_counts_give_the_same_chunks_as_counting_each_join():
    """A counter that adds up over white space (as SentencePiece's and WordPiece's do): the chunks are
    those of the exact one-count-per-join packing, with each sentence and each chunk counted once, in
    batches, and no single counts beyond the fixed-cost probe."""
    doc = Document("d", _PROSE, "t", "d")
    single: list[str] = []
    batches: list[int] = []

    def counter(text: str) -> int:
        single.append(text)
        return words(text)

    def many(texts):
        batches.append(len(texts))
        return [words(t) for t in texts]

    for max_tokens, overlap in ((20, 1), (40, 2), (60, 0)):
        expected = chunk_document(doc, words, max_tokens=max_tokens, overlap_sentences=overlap)
        single.clear()
        batches.clear()
        chunks = chunk_document(doc, counter, max_tokens=max_tokens, overlap_sentences=overlap, count_many=many)
        assert [(c.start, c.end) for c in chunks] == [(c.start, c.end) for c in expected]
        assert len(single) <= 3  # the fixed cost ("a", "a a") and the whole-paragraph probe
        assert len(batches) == 2 and batches[1] == len(chunks)  # the sentences, then the chunks


def test_a_counter_that_does_not_add_up_still_gets_chunks_within_the_budget():
    """Counts that grow with the white space between sentences (the sum of the parts is short of the
    whole): chunks packed by the sum go over the budget when counted whole, and are packed again."""

    single: list[str] = []

    def chars(text: str) -> int:
        return len(text) // 5 + 1

    def counter(text: str) -> int:
        single.append(text)
        return chars(text)

    text = (" " * 20).join(f"Kalimat {i} tentang pertemuan di Moskow." for i in range(40))  # 20 spaces between
    doc = Document("d", text, "t", "d")
    chunks = chunk_document(
        doc, counter, max_tokens=30, overlap_sentences=1, count_many=lambda texts: [chars(t) for t in texts]
    )
    assert len(single) > 3  # the sums fell short: chunks were packed again, counted whole
    assert chunks and all(chars(c.text) <= 30 for c in chunks)
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)
    covered = {i for c in chunks for i in range(c.start, c.end)}
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
