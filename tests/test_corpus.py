import json
import os
import random
from pathlib import Path

import pytest
from conftest import SHARED

from rag.steps.corpus import DEFAULT_MAX_LINE_BYTES, derive_title, load_corpus, normalize_text


def test_loads_every_supported_type(tmp_path: Path):
    (tmp_path / "a.txt").write_text("Judul Berita\n\nIsi  berita   pertama.\r\nBaris dua.", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("# Kabar Kedua\n\nTeks kedua.", encoding="utf-8")
    (tmp_path / "c.html").write_text(
        "<html><head><title>Halaman &amp; Judul</title><script>alert(1)</script></head>"
        "<body><h1>Berita</h1><p>Paragraf <b>satu</b>.</p><p>Paragraf dua.</p></body></html>",
        encoding="utf-8",
    )
    (tmp_path / "d.jsonl").write_text(
        json.dumps({"id": "x1", "text": "Dokumen JSON satu.", "title": "T1", "url": "http://e/1"})
        + "\n"
        + json.dumps({"doc_id": "x2", "text": "Dokumen JSON dua."})
        + "\n",
        encoding="utf-8",
    )
    loaded = load_corpus(tmp_path)
    by_id = {d.doc_id: d for d in loaded.documents}
    assert set(by_id) == {"a.txt", "sub/b.md", "c.html", "x1", "x2"}
    assert by_id["a.txt"].text == "Judul Berita\n\nIsi berita pertama.\nBaris dua."
    assert by_id["a.txt"].title == "Judul Berita"
    assert by_id["c.html"].title == "Halaman & Judul"
    assert "alert" not in by_id["c.html"].text and "Paragraf satu." in by_id["c.html"].text
    assert by_id["x1"].metadata == {"url": "http://e/1"} and by_id["x1"].title == "T1"
    assert loaded.skipped == []


def test_bad_files_are_reported_and_the_rest_indexed(tmp_path: Path):
    (tmp_path / "good.txt").write_text("Berita yang baik.", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.md").write_text("   \n\n  ", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02PNG\x00" * 10)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 na\xefve".encode("latin-1"))
    (tmp_path / "dup.txt").write_text("Berita yang baik.", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "big.txt").write_text("x" * 2000, encoding="utf-8")
    (tmp_path / "lines.jsonl").write_text(
        '{"id": "ok", "text": "Baris baik."}\nnot json\n{"text": "no id"}\n', encoding="utf-8"
    )
    os.symlink(tmp_path, tmp_path / "loop")
    loaded = load_corpus(tmp_path, max_file_bytes=1000)
    assert {d.doc_id for d in loaded.documents} == {"good.txt", "ok"} or {d.doc_id for d in loaded.documents} == {
        "dup.txt",
        "ok",
    }
    reasons = {s.source: s.reason for s in loaded.skipped}
    assert reasons["empty.txt"] == "empty file"
    assert reasons["blank.md"] == "empty file"
    assert reasons["binary.txt"].startswith("binary file")
    assert reasons["latin1.txt"].startswith("undecodable")
    assert reasons["image.png"].startswith("unsupported type .png")
    assert reasons["big.txt"].startswith("too large")
    assert reasons["lines.jsonl:2"].startswith("invalid JSON")
    assert reasons["lines.jsonl:3"].startswith('no "id"')
    assert any(r.startswith("duplicate of") for r in reasons.values())


@pytest.mark.skipif(not (SHARED / "bench" / "facqa" / "corpus.jsonl").exists(), reason="shared bench not present")
def test_benchmark_corpus_loads_as_it_is():
    loaded = load_corpus(SHARED / "bench" / "facqa" / "corpus.jsonl")
    assert len(loaded.documents) == 1328
    assert loaded.skipped == []


def test_normalisation_and_titles():
    assert normalize_text("a\u0301 \t b\r\n\n\n\nc\x07") == "\u00e1 b\n\nc"
    assert derive_title("Headline Here\n\nBody text.") == "Headline Here"
    long = "Kalimat pertama yang cukup panjang. " + "kata " * 50
    assert derive_title(long) == "Kalimat pertama yang cukup panjang."


def test_unreadable_file_is_reported_and_skipped(tmp_path: Path, monkeypatch):
    # root can read any file, so the errors are raised the way the OS would raise them
    (tmp_path / "ok.txt").write_text("Berita yang bisa dibaca.", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("Tidak boleh dibaca.", encoding="utf-8")
    (tmp_path / "gone.txt").write_text("Dihapus setelah didaftar.", encoding="utf-8")
    real_open = os.open

    def os_open(path, flags, *args, **kwargs):
        name = os.path.basename(os.fsdecode(path))
        if name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(path))
        if name == "gone.txt":  # listed, then deleted before it is read
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    loaded = load_corpus(tmp_path)
    assert [d.doc_id for d in loaded.documents] == ["ok.txt"]
    assert sorted((s.source, s.reason) for s in loaded.skipped) == [
        ("gone.txt", "vanished before it could be read"),
        ("secret.txt", "unreadable: Permission denied"),
    ]


# --- hostile inputs: each one is skipped (or cleaned) on its own, and everything else still loads ---

GOOD_LINE = json.dumps({"id": "good", "text": "Dokumen yang baik."})


def load_lines(tmp_path: Path, *lines: str | bytes, **limits: int):
    """load_corpus on a .jsonl file of a good line, ``lines``, and another good line."""
    raw = [GOOD_LINE.encode()] + [x if isinstance(x, bytes) else x.encode() for x in lines]
    raw.append(json.dumps({"id": "good2", "text": "Dokumen baik yang lain."}).encode())
    (tmp_path / "c.jsonl").write_bytes(b"\n".join(raw) + b"\n")
    loaded = load_corpus(tmp_path, **limits)
    assert {"good", "good2"} <= {d.doc_id for d in loaded.documents}
    return loaded


def only_skip(tmp_path: Path, line: str | bytes, **limits: int) -> str:
    loaded = load_lines(tmp_path, line, **limits)
    assert [d.doc_id for d in loaded.documents] == ["good", "good2"]
    assert [s.source for s in loaded.skipped] == ["c.jsonl:2"]
    return loaded.skipped[0].reason


def test_lone_surrogate_becomes_a_replacement_character(tmp_path: Path):
    loaded = load_lines(tmp_path, '{"id":"s","text":"a \\ud800 b","title":"t \\udfff","k":["\\ud800"]}')
    doc = {d.doc_id: d for d in loaded.documents}["s"]
    assert (doc.text, doc.title, doc.metadata) == ("a \ufffd b", "t \ufffd", {"k": ["\ufffd"]})
    assert loaded.skipped == []
    # a well-formed pair is the character it encodes
    assert normalize_text("\ud83d\ude00") == "\U0001f600"


def test_id_of_5000_digits_is_skipped(tmp_path: Path):
    assert "5000 digits" in only_skip(tmp_path, '{"id": ' + "7" * 5000 + ', "text": "x"}')
    assert "limit is 512" in only_skip(tmp_path, json.dumps({"id": "7" * 5000, "text": "x"}))


def test_deep_nesting_is_skipped(tmp_path: Path):
    assert only_skip(tmp_path, "[" * 100_000) == "invalid JSON: nested too deeply"
    assert only_skip(tmp_path, '{"id": "n", "text": "x", "m": ' + "[" * 100_000 + "]" * 100_000 + "}") == (
        "invalid JSON: nested too deeply"
    )
    assert "nested more than" in only_skip(tmp_path, '{"id": "n", "text": "x", "m": ' + "[" * 40 + "]" * 40 + "}")


def test_nul_bytes(tmp_path: Path):
    assert only_skip(tmp_path, b'{"id": "z", "text": "a\x00b"}') == "binary content (NUL byte)"
    (tmp_path / "nul.txt").write_bytes(b"Teks biasa." + b"\x00" * 3 + b"lalu lanjut.")
    reasons = {s.source: s.reason for s in load_corpus(tmp_path).skipped}
    assert reasons["nul.txt"] == "binary file (NUL byte at byte 11)"
    # an escaped NUL is a control character like any other: removed
    loaded = load_lines(tmp_path, '{"id": "e", "text": "a\\u0000b\\u0007c\\u200bd"}')
    assert {d.doc_id: d.text for d in loaded.documents}["e"] == "abcd"


def test_binary_txt_is_skipped(tmp_path: Path):
    noise = random.Random(0).randbytes(4096)
    (tmp_path / "noise.txt").write_bytes(noise.replace(b"\x00", b"\x01"))
    (tmp_path / "controls.md").write_bytes(bytes(range(1, 32)) * 20)
    (tmp_path / "ok.txt").write_text("Berita biasa.", encoding="utf-8")
    loaded = load_corpus(tmp_path)
    assert [d.doc_id for d in loaded.documents] == ["ok.txt"]
    reasons = {s.source: s.reason for s in loaded.skipped}
    assert reasons["noise.txt"].startswith("undecodable (not UTF-8")
    assert reasons["controls.md"].startswith("binary file (")


def test_line_of_2_mb_is_skipped_before_parsing(tmp_path: Path):
    line = json.dumps({"id": "big", "text": "kata " * 400_000})
    assert only_skip(tmp_path, line) == f"line too long ({len(line)} bytes > {DEFAULT_MAX_LINE_BYTES})"
    assert "big" in {d.doc_id for d in load_lines(tmp_path, line, max_line_bytes=3_000_000).documents}


def test_fields_of_the_wrong_json_type_are_skipped(tmp_path: Path):
    expected = {
        '{"id": "t", "text": "x", "title": ["a"]}': '"title" must be a string, not a list',
        '{"id": "t", "text": "x", "title": 5}': '"title" must be a string, not a number',
        '{"id": "t", "text": "x", "title": {"a": 1}}': '"title" must be a string, not an object',
        '{"id": "t", "text": ["x"]}': '"text" must be a string, not a list',
        '{"id": "t", "text": null}': 'no "text" string',
        '{"id": true, "text": "x"}': '"id" must be a string or an integer, not a boolean',
        '{"id": 1.5, "text": "x"}': '"id" must be a string or an integer, not a number',
        '{"id": ["a"], "text": "x"}': '"id" must be a string or an integer, not a list',
        '{"id": "\\u200b", "text": "x"}': '"id" is empty',
        '["id", "text"]': "not a JSON object (a list)",
        '"just a string"': "not a JSON object (a string)",
        "null": "not a JSON object (null)",
        '{"id": "t", "text": "x", "n": 1e999}': "the number 1e999 is out of range (JSON numbers must be finite)",
        '{"id": "t", "text": "x", "n": NaN}': "NaN is not a JSON value",
        '{"id": "t", "text": "x", "n": -Infinity}': "-Infinity is not a JSON value",
        '{"id": "t", "text": "x", "n": 1' + "0" * 200 + "}": "a number has 201 digits; the limit is 100",
        '{"id": "t", "text": "x", "title": "' + "j" * 1001 + '"}': '"title" is 1001 characters long; the limit is 1000',
        b'{"id": "t", "text": "caf\xe9"}': "not UTF-8 (byte 0xe9 at byte 24)",
        '{"id": "t", "text": "x"': "invalid JSON: Expecting ',' delimiter",
    }
    for line, reason in expected.items():
        assert only_skip(tmp_path, line) == reason, line


def test_integer_ids_and_clean_metadata_load(tmp_path: Path):
    loaded = load_lines(tmp_path, '{"id": 42, "text": "x", "url": "http://e/\\u202e1", "n": 1.5, "ok": true}')
    doc = {d.doc_id: d for d in loaded.documents}["42"]
    assert doc.metadata == {"url": "http://e/1", "n": 1.5, "ok": True}
    assert json.loads(json.dumps(doc.metadata)) == doc.metadata


def test_characters_are_normalised_once_at_the_boundary():
    text = "a\u200bb\u00adc \u202eevil\u202c \ufeffd\x1b[0m e\u0301" + "\u0301\u0316" * 1000
    cleaned = normalize_text(text)
    assert cleaned.startswith("abc evil d[0m \u00e9\u0316")
    assert len(cleaned) < 100  # an over-long run of combining marks is cut (NFC sorts it in quadratic time)


def test_fifo_and_bad_file_names_are_skipped(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe.txt")  # opening it for reading would block forever
    (tmp_path / os.fsdecode(b"bad\xffname.txt")).write_text("Isi.", encoding="utf-8")
    (tmp_path / "ok.txt").write_text("Berita biasa.", encoding="utf-8")
    loaded = load_corpus(tmp_path)
    assert [d.doc_id for d in loaded.documents] == ["ok.txt"]
    reasons = {s.source: s.reason for s in loaded.skipped}
    assert reasons["pipe.txt"] == "not a regular file"
    assert reasons["bad\ufffdname.txt"].startswith("the file name is not valid UTF-8")


def test_malformed_html_loads_in_linear_time(tmp_path: Path):
    # html.parser needs minutes for these; the scanner reads each in one pass
    for i, page in enumerate(["<x " * 100_000, "<!--" * 100_000, '<a b="' * 100_000, "&#" + "1" * 5000 + ";"]):
        (tmp_path / f"p{i}.html").write_text("<p>Halaman " + str(i) + "</p>" + page, encoding="utf-8")
    loaded = load_corpus(tmp_path)
    assert sorted(d.text for d in loaded.documents) == ["Halaman 0", "Halaman 1", "Halaman 2", "Halaman 3\n\ufffd"]
