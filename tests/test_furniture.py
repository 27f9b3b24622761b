"""Page furniture leaves the articles at ingest; what remains is what is chunked and cited."""

from pathlib import Path

from rag.steps.corpus import load_corpus
from rag.steps.furniture import is_prompt, repeated_lines, strip_furniture


def test_consent_and_navigation_prompts_are_furniture_and_article_lines_are_not():
    assert is_prompt("Situs ini menggunakan kuki. Klik di sini untuk mempelajari lebih lanjut.")
    assert is_prompt("We use cookies to improve your experience. Accept")
    assert is_prompt("Baca juga: Banjir di Bandung")
    assert is_prompt("Iklan")
    assert not is_prompt("Pemerintah melarang iklan rokok di televisi.")
    assert not is_prompt("Bagi warga, kuki buatan ibu adalah oleh-oleh favorit dari Bandung, kata Rina. " * 3)


def test_lines_repeated_on_three_pages_of_a_site_are_furniture():
    pages = [f"Berita {i} tentang banjir.\nRedaksi Harian Kota Bandung menerima surat pembaca" for i in range(3)]
    repeated = repeated_lines(pages)
    assert repeated == {"Redaksi Harian Kota Bandung menerima surat pembaca"}
    assert strip_furniture(pages[0], repeated) == ("Berita 0 tentang banjir.", tuple(repeated))


def test_furniture_is_removed_at_load_and_reported_per_document(tmp_path: Path):
    folder = tmp_path / "site"
    folder.mkdir()
    footer = "Hak cipta Harian Kota, semua isi dilindungi undang-undang"
    for i in range(3):
        (folder / f"{i}.txt").write_text(
            f"Judul {i}\n\nIsi berita nomor {i} tentang jembatan.\n\n{footer}\n\nTerima kuki", encoding="utf-8"
        )
    loaded = load_corpus(folder)
    assert len(loaded.documents) == 3
    for doc in loaded.documents:
        assert "kuki" not in doc.text and footer not in doc.text
        assert doc.metadata["furniture_removed"] == [footer, "Terima kuki"]
        assert doc.text.endswith("tentang jembatan.")
