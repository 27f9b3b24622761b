"""The checks after grounding, on examples written for each class of failure (not eval questions)."""

import pytest

from rag.steps.answer.answers_question import Asked, asked_kind, foreign_numbers, missing_kind, polarity_flipped
from rag.steps.metadata import Field, asked_fields, extract_metadata


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Siapa gubernur yang meresmikan jembatan itu?", Asked.WHO),
        ("Who opened the new bridge in Surabaya?", Asked.WHO),
        ("Kapan jembatan itu diresmikan?", Asked.WHEN),
        ("In what year did the factory close?", Asked.WHEN),
        ("Berapa lama rapat itu berlangsung?", Asked.HOW_MANY),
        ("How many workers lost their jobs?", Asked.HOW_MANY),
        ("Di mana festival itu digelar?", Asked.WHERE),
        ("Which city hosted the summit?", Asked.WHERE),
        ("Mengapa harga beras naik?", Asked.WHY),
        ("Apa isi perjanjian itu?", Asked.OTHER),
    ],
)
def test_the_kind_a_question_asks_for(question, kind):
    assert asked_kind(question) == kind


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Who opened the bridge in Surabaya?", "Governor Khofifah Indar Parawansa opened it [1]."),
        ("Kapan jembatan Suramadu diresmikan?", "Jembatan itu diresmikan pada 10 Juni 2009 [1]."),
        ("Kapan rapat itu digelar?", "Rapat digelar pada Selasa pagi [2]."),
        ("Berapa lama rapat itu berlangsung?", "Rapat berlangsung selama tiga jam [1]."),
        ("How many workers lost their jobs at the plant?", "About 1,200 workers lost their jobs [1]."),
        ("Di mana festival itu digelar?", "Festival digelar di Yogyakarta [1]."),
        ("Why did rice prices rise?", "Prices rose because the harvest failed [1]."),
        ("Apa isi perjanjian itu?", "Perjanjian itu mengatur tarif impor [1]."),
        # a person named where places also are: the person answers
        ("Siapa pelaku penembakan itu?", "Pelakunya Ahmad Zaki, warga negara Malaysia asal Sabah [1]."),
        ("Who spoke in Brussels?", "Alexander Grushko spoke to reporters in Brussels [1]."),
        ("Who did the minister meet?", "She met the ambassador of Japan and Lavrov in Moscow [1]."),
    ],
)
def test_answers_of_the_asked_kind_pass(question, answer):
    assert missing_kind(question, answer) == ""


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        # restating the question's own people and places: true, cited, and no answer
        ("Who did Widodo meet in Tokyo?", "Widodo met in Tokyo on Tuesday [1]."),
        ("Kapan Widodo bertemu Kishida di Tokyo?", "Widodo bertemu Kishida di Tokyo untuk membahas investasi [1]."),
        ("How many ships did the navy send to Natuna?", "The navy sent ships to Natuna [1]."),
        ("Di mana Widodo bertemu Kishida?", "Widodo bertemu Kishida untuk membahas kerja sama [1]."),
        ("Why did the minister resign?", "The minister resigned on Friday [1]."),
        # who, answered with where someone is from or where they were
        ("Siapa nama pelaku penembakan itu?", "Pelaku penembakan itu adalah warga negara Malaysia asal Sabah [1]."),
        ("Who was the gunman?", "The gunman was a man from the city, born in Medan [1]."),
        ("Who led the delegation to Geneva?", "The delegation was led by an official in Jakarta [1]."),
    ],
)
def test_non_answers_are_caught(question, answer):
    assert missing_kind(question, answer)


def test_a_negated_clause_must_stay_negated():
    passage = "Menurut pejabat itu, Jakarta belum bersedia mencabut larangan ekspor, tetapi pembicaraan berlanjut."
    assert polarity_flipped("Jakarta bersedia mencabut larangan ekspor [1].", passage)
    assert not polarity_flipped("Jakarta belum bersedia mencabut larangan ekspor [1].", passage)
    assert not polarity_flipped("Pembicaraan soal larangan ekspor berlanjut [1].", passage)  # the other clause
    english = "The company never admitted that it dumped waste into the river."
    assert polarity_flipped("The company admitted that it dumped waste into the river.", english)
    assert not polarity_flipped("The company has not admitted dumping waste into the river.", english)


ARTICLE = (
    "SURABAYA – Pemerintah provinsi membuka jembatan baru pada Senin.\n"
    "Foto: Budi Santoso/Antara\n"
    "Jembatan itu menghubungkan dua kecamatan.\n"
    "Oleh Rina Wulandari\n"
    "Hak cipta milik Harian Kota."
)


def test_a_question_about_a_number_the_articles_never_write_is_about_something_else():
    article = ["Pengangguran bertambah 300.000 orang akibat kenaikan biaya produksi 25 persen pada tahun 2005."]
    assert foreign_numbers("Berapa pengangguran akibat kenaikan biaya 25 persen?", article) == ""
    assert foreign_numbers("Berapa pengangguran akibat kenaikan biaya 40 persen?", article).endswith("40")
    # another year than the article's: the model would answer with the article's own
    assert "2004" in foreign_numbers("Berapa pengangguran pada tahun 2004?", article)
    # numbers are compared as digits: "17,600" in English is "17.600" in Indonesian
    assert foreign_numbers("Why did 17,600 soldiers go back?", ["Sebanyak 17.600 tentara kembali."]) == ""
    # an article that dates nothing cannot contradict a year, but still every other number counts
    undated = ["Topan Katrina menyerang New Orleans pada Senin, 29 Agustus, dan menewaskan 80 orang."]
    assert foreign_numbers("Topan apa yang menyerang New Orleans pada Agustus 2005?", undated) == ""
    assert "30" in foreign_numbers("Topan apa yang menyerang New Orleans pada 30 Agustus 2005?", undated)


def test_article_metadata_are_exact_spans():
    found = extract_metadata(ARTICLE)
    assert found[Field.DATELINE].value == "Surabaya"
    assert found[Field.AUTHOR].value == "Rina Wulandari"
    assert found[Field.PUBLISHER].value == "Harian Kota"
    assert found[Field.PHOTO].value.startswith("Budi Santoso")
    for span in found.values():
        assert ARTICLE[span.start : span.end] == span.text
    note = "Isi artikel.\nDewi Lestari adalah peneliti senior di Pusat Kajian Asia dan mengajar di Jakarta."
    assert extract_metadata(note)[Field.AUTHOR].value == "Dewi Lestari"


@pytest.mark.parametrize(
    ("text", "value", "line"),
    [
        ("MOSKOW, 12/5 - Presiden Rusia berbicara.\nIsi.", "12/5", "MOSKOW, 12/5 - Presiden Rusia berbicara."),
        ("Judul\nDiterbitkan: Senin, 14 Oktober 2014 10:00 WIB\nIsi.", "Senin, 14 Oktober 2014", None),
        ("Headline\nPublished on May 23, 2017\nBody.", "May 23, 2017", "Published on May 23, 2017"),
        ("Isi berita.\nKamis, 3 Maret 2022 | 08.15 WIB", "Kamis, 3 Maret 2022", None),
        ("Isi berita.\n2021-07-09", "2021-07-09", "2021-07-09"),
    ],
)
def test_the_publication_date_is_read_from_date_lines_and_datelines(text, value, line):
    span = extract_metadata(text)[Field.DATE]
    assert span.value == value and text[span.start : span.end] == span.text
    assert line is None or span.text == line


def test_dates_of_events_in_the_text_are_no_publication_date():
    text = "PARIS – Kerry dan Lavrov bertemu pada 14 Oktober 2014.\nPertemuan berlangsung tiga jam."
    assert Field.DATE not in extract_metadata(text)
    assert Field.DATE not in extract_metadata("Isi.\nRapat digelar pada 14 Oktober 2014 di Jakarta.")


def test_questions_about_the_article_itself():
    assert asked_fields("Siapa penulis artikel tentang jembatan Surabaya?") == (Field.AUTHOR,)
    assert asked_fields("Who wrote the piece on the Surabaya bridge?") == (Field.AUTHOR,)
    assert asked_fields("Dari kota mana berita jembatan itu dilaporkan?") == (Field.DATELINE,)
    assert asked_fields("Siapa yang membuka jembatan itu?") == ()
    assert asked_fields("Kapan artikel tentang jembatan Surabaya diterbitkan?") == (Field.DATE,)
    assert asked_fields("On what date was the story on the Surabaya bridge published?") == (Field.DATE,)
    assert asked_fields("What is the publication date of the opinion piece on floods?") == (Field.DATE,)
    # the date of an event, or of a report the article mentions, is not the article's own
    assert asked_fields("Kapan jembatan itu dibuka?") == ()
    assert asked_fields("Kapan laporan Bank Dunia itu diterbitkan?") == ()
