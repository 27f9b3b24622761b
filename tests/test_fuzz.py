"""Fuzzing the boundary: no file, no JSONL line and no question can raise out of the loader, the chunker or
the question check, and whatever gets in is clean text with exact chunk offsets.

Run with ``-s`` to see how many documents were generated (the last test prints the tally).
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.core.errors import InputError
from rag.core.types import Document
from rag.core.unicode_text import has_removed_characters
from rag.steps.chunking import chunk_document
from rag.steps.corpus import load_corpus, normalize_text
from rag.steps.question import clean_question

TALLY: Counter[str] = Counter()

# Characters the boundary must deal with, besides whatever hypothesis draws.
HOSTILE_CHARS = (
    ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\r", "\n", "\t", "\x0b", "\x0c", "\u2028", "\u2029"]
    + ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069", "\u2060", "\ufeff"]
    + ["\u00ad", "\u0301", "\u0316", "\u0f73", "\ufffd", "\U0001f600", ".", "!", "?", "…", '"', "”", ")", " "]
    + ["<", ">", "&", "&#", "{", "[", "\\", "St", "Dr", "a"]
)
surrogate = st.integers(min_value=0xD800, max_value=0xDFFF).map(chr)
char = st.one_of(st.characters(), st.sampled_from(HOSTILE_CHARS), surrogate)
short_text = st.lists(char, max_size=40).map("".join)
# a long line: a short hostile piece repeated, no newline needed
long_text = st.builds(
    lambda piece, n: piece * n, st.lists(char, min_size=1, max_size=8).map("".join), st.integers(0, 3000)
)
hostile_text = st.one_of(short_text, short_text, long_text)

json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**200), max_value=10**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(short_text, children, max_size=4),
    max_leaves=12,
)
record = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(short_text, st.integers(), json_value),
        "doc_id": json_value,
        "text": st.one_of(hostile_text, hostile_text, json_value),
        "title": st.one_of(short_text, json_value),
        "url": json_value,
        "extra": json_value,
    },
)
# records that mostly load, so the chunker sees plenty of hostile text
plausible_record = st.fixed_dictionaries(
    {"id": st.one_of(short_text, st.integers(), st.text(min_size=1, max_size=20)), "text": hostile_text},
    optional={"title": short_text, "url": json_value, "date": short_text},
)
raw_line = st.one_of(
    st.binary(max_size=200),
    st.integers(1, 120_000).map(lambda n: b"[" * n),
    st.integers(1, 120_000).map(lambda n: b'{"id": "d", "text": "x", "m": ' + b"[" * n),
    st.integers(1, 6_000).map(lambda n: b'{"id": ' + b"9" * n + b', "text": "x"}'),
    st.sampled_from([b'{"id": "n", "text": "x", "v": 1e999}', b'{"id": "n", "text": "x", "v": NaN}', b"\xef\xbb\xbf"]),
)
jsonl_line = st.one_of(
    plausible_record.map(lambda r: json.dumps(r, ensure_ascii=True).encode()),
    record.map(lambda r: json.dumps(r, ensure_ascii=True).encode()),  # ascii: lone surrogates become \\udXXX
    record.map(lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    json_value.map(lambda v: json.dumps(v).encode()),
    raw_line,
)
text_bytes = st.one_of(
    hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")),  # a surrogate makes it invalid UTF-8
    hostile_text.map(lambda t: t.encode("utf-8", "replace")),
    st.binary(max_size=2000),
)
a_file = st.one_of(
    st.tuples(st.sampled_from([".txt", ".md", ".html"]), text_bytes),
    st.tuples(st.just(".jsonl"), st.lists(jsonl_line, min_size=1, max_size=8).map(b"\n".join)),
)


def words(text: str) -> int:
    return len(text.split()) + 2


def assert_clean(value: object) -> None:
    """Every string in ``value`` is clean text and the whole of it round-trips through UTF-8 JSON."""
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            assert not has_removed_characters(v), ascii(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def check_document(doc: Document, max_tokens: int) -> None:
    assert doc.text and doc.text == normalize_text(doc.text)
    assert_clean([doc.doc_id, doc.text, doc.title, doc.source, doc.metadata])
    chunks = chunk_document(doc, words, max_tokens=max_tokens, overlap_sentences=1)
    assert chunks and len({c.chunk_id for c in chunks}) == len(chunks)
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text and c.text == c.text.strip() and c.text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(a_file, min_size=1, max_size=5), st.integers(min_value=3, max_value=80))
def test_any_folder_loads_without_an_exception(files, max_tokens):
    with tempfile.TemporaryDirectory() as folder:
        expected: dict[str, str] = {}  # source -> kind, for every document the folder holds
        for i, (suffix, content) in enumerate(files):
            name = f"f{i}{suffix}"
            (Path(folder) / name).write_bytes(content)
            if suffix != ".jsonl":
                expected[name] = "file"
                continue
            body = content.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark starts the file, not a line
            for number, line in enumerate(body.split(b"\n"), start=1):
                if line.strip():
                    expected[f"{name}:{number}"] = "line"
        loaded = load_corpus(Path(folder))  # must not raise
    TALLY["documents generated"] += len(expected)
    TALLY["loaded"] += len(loaded.documents)
    TALLY["skipped"] += len(loaded.skipped)
    for doc in loaded.documents:
        check_document(doc, max_tokens)
    for skip in loaded.skipped:
        assert skip.reason
        assert_clean([skip.source, skip.reason])
    # every document is accounted for: loaded, or skipped with a reason (by line, or the whole file)
    accounted = {d.source for d in loaded.documents} | {s.source for s in loaded.skipped}
    for source in expected:
        assert source in accounted or source.split(":")[0] in accounted, source
    assert not [s for s in loaded.skipped if s.reason.startswith("could not be loaded")]  # all foreseen


@settings(max_examples=500, deadline=None)
@given(hostile_text, st.integers(min_value=3, max_value=80))
def test_any_text_normalises_and_chunks(text, max_tokens):
    TALLY["texts generated"] += 1
    clean = normalize_text(text)
    assert clean == normalize_text(clean)  # normalising once is enough
    assert not has_removed_characters(clean)
    if clean:
        check_document(Document("d", clean, "t", "s"), max_tokens)


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_any_question_is_cleaned_or_refused(text):
    TALLY["questions generated"] += 1
    try:
        question = clean_question(text, 2000)
    except InputError:
        return
    assert question and question == question.strip() and "\n" not in question
    assert not has_removed_characters(question)


def test_report_the_tally():
    """Printed with ``pytest -s``: the figures behind "N documents generated, 0 crashes"."""
    print(
        f"\nfuzz: {TALLY['documents generated']} documents generated in files "
        f"({TALLY['loaded']} loaded, {TALLY['skipped']} skipped with a reason), "
        f"{TALLY['texts generated']} texts, {TALLY['questions generated']} questions, 0 crashes"
    )
