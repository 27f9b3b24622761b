import json
import os
from pathlib import Path

import pytest
from conftest import SHARED

from rag.steps.corpus import derive_title, load_corpus, normalize_text


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
    assert reasons["binary.txt"] == "binary file"
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
    # root can read any file, so the permission error is raised the way the OS would raise it
    (tmp_path / "ok.txt").write_text("Berita yang bisa dibaca.", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("Tidak boleh dibaca.", encoding="utf-8")
    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    loaded = load_corpus(tmp_path)
    assert [d.doc_id for d in loaded.documents] == ["ok.txt"]
    assert [(s.source, s.reason) for s in loaded.skipped] == [("secret.txt", "unreadable: Permission denied")]
