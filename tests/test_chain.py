from pathlib import Path

import pytest
from conftest import fake_retriever
from fakes import ScriptedChatModel

from rag.core.errors import ConfigError, InputError
from rag.pipeline import answer_params
from rag.settings import REPO_ROOT, Settings
from rag.steps.answer.answerer import Answerer
from rag.steps.answer.grounding import split_answer
from rag.steps.conversation import standalone_question
from rag.steps.language import detect_language
from rag.steps.metadata import Articles
from rag.steps.prompting import load_prompts


@pytest.fixture
def make_answerer(corpus_dir: Path, tmp_path: Path):
    retriever = fake_retriever(corpus_dir, tmp_path / "index")

    def make(*replies: str, min_evidence: float = 0.05) -> Answerer:
        settings = Settings(index_dir=tmp_path / "index", k=3, min_evidence=min_evidence)
        chat = ScriptedChatModel(replies=list(replies))
        # the hashing embedder's cosines are low; grounding here rests on words, names and numbers
        prompts = load_prompts(settings.prompts_dir)
        articles = Articles(retriever.index.documents)
        count = lambda t: len(t.split())  # noqa: E731
        return Answerer(retriever, retriever.embedder, chat, prompts, count, answer_params(settings), articles)

    return make


def shown_index(answerer: Answerer, question: str, doc_id: str) -> int:
    prepared = answerer.prepare(question)
    return next(i for i, h in enumerate(prepared.shown, start=1) if h.chunk.doc_id == doc_id)


def test_valid_citations_resolve_to_the_shown_passages(make_answerer):
    probe = make_answerer()
    n = shown_index(probe, "Berapa lama Lavrov dan Kerry bertemu di Paris?", "paris.txt")
    answerer = make_answerer(f"Lavrov dan Kerry bertemu di Paris selama tiga jam [{n}].")
    answer = answerer.answer("Berapa lama Lavrov dan Kerry bertemu di Paris?")
    assert not answer.declined
    assert answer.language == "id"
    assert answer.text == f"Lavrov dan Kerry bertemu di Paris selama tiga jam [{n}]."
    (citation,) = answer.citations
    assert citation.n == n and citation.chunk.doc_id == "paris.txt"
    assert "tiga jam" in citation.chunk.text
    assert answer.timings["first_token_ms"] <= answer.timings["total_ms"]


def test_markers_that_point_nowhere_are_removed_and_reported(make_answerer):
    probe = make_answerer()
    n = shown_index(probe, "Berapa lama Lavrov dan Kerry bertemu di Paris?", "paris.txt")
    answerer = make_answerer(f"Pertemuan di Paris berlangsung tiga jam [{n}][9]. Ini juga benar [0].")
    answer = answerer.answer("Berapa lama Lavrov dan Kerry bertemu di Paris?")
    assert "[9]" in answer.dropped_markers and "[0]" in answer.dropped_markers
    assert "[9]" not in answer.text and "[0]" not in answer.text
    assert {c.n for c in answer.citations} == {n}


def test_wrong_number_is_re_cited_and_unsupported_sentence_dropped(make_answerer):
    probe = make_answerer()
    question = "Siapa duta besar Rusia untuk NATO?"
    n_nato = shown_index(probe, question, "nato.txt")
    wrong = 1 if n_nato != 1 else 2
    answerer = make_answerer(
        f"Duta Besar Rusia untuk NATO adalah Alexander Grushko [{wrong}]. Ia lahir di Moskow pada 1955 [{n_nato}]."
    )
    answer = answerer.answer(question)
    assert not answer.declined
    assert answer.text == f"Duta Besar Rusia untuk NATO adalah Alexander Grushko [{n_nato}]."
    assert answer.dropped_sentences == ("Ia lahir di Moskow pada 1955.",)


def test_invented_answer_is_declined_after_grounding(make_answerer):
    answerer = make_answerer("Jerman memenangkan Piala Dunia 2014 di Brasil [1].")
    answer = answerer.answer("Siapa duta besar Rusia untuk NATO?")
    assert answer.declined and answer.decline_reason == "grounding"
    assert answer.citations == ()
    assert answer.text.startswith("Artikel-artikel ini tidak memuat")
    assert answer.hits  # the closest passages are still shown


def test_weak_evidence_declines_without_calling_the_model(make_answerer):
    answerer = make_answerer(min_evidence=0.99)  # no reply scripted: a call would fail the test
    answer = answerer.answer("What is the population of Jakarta?")
    assert answer.declined and answer.decline_reason.startswith("evidence")
    assert answer.language == "en" and answer.text.startswith("The articles do not contain")
    assert answerer.chat.prompts == []


def test_question_language_reaches_the_prompt(make_answerer):
    answerer = make_answerer("Kerry met Lavrov in Paris [1].")
    answerer.answer("Who did Kerry meet in Paris?")
    (messages,) = answerer.chat.prompts
    assert messages[-1].text.rstrip().endswith("Answer in English.")
    assert "[1] " in messages[-1].text


def test_streaming_yields_tokens_then_one_answer(make_answerer):
    answerer = make_answerer("Kerry bertemu Lavrov di Paris [1].")
    events = list(answerer.stream("Siapa yang bertemu Lavrov di Paris?"))
    assert events[0].kind == "evidence" and events[0].prepared.shown
    assert [e.kind for e in events[1:-1]] == ["token"] * (len(events) - 2) and len(events) > 3
    assert events[-1].kind == "answer"
    assert "".join(e.text for e in events[:-1]) == "Kerry bertemu Lavrov di Paris [1]."


def test_runnable_chain_gives_the_same_answer(make_answerer):
    answerer = make_answerer("Kerry bertemu Lavrov di Paris [1].")
    answer = answerer.as_runnable().invoke({"question": "Siapa yang bertemu Lavrov di Paris?"})
    assert answer.citations and not answer.declined


def test_follow_up_is_resolved_against_history():
    history = [("Siapa Duta Besar Rusia untuk NATO?", "Alexander Grushko [1].")]
    query = standalone_question("Apa kata dia?", history)
    assert "Grushko" in query and "NATO" in query
    assert standalone_question("Siapa Perdana Menteri Rusia yang diwawancarai CNBC?", history).startswith(
        "Siapa Perdana"
    )


def test_a_question_that_stands_alone_is_read_as_the_first_of_a_chat(make_answerer):
    answerer = make_answerer()
    history = [
        ("Siapa Duta Besar Rusia untuk NATO?", "Alexander Grushko [1]."),
        ("Apa kata dia?", "Dia mengkritik NATO [2]."),
    ]
    for question in ("Siapa Perdana Menteri Rusia yang diwawancarai CNBC?", "Where did Kerry meet Lavrov in Paris?"):
        alone, in_chat = answerer.prepare(question), answerer.prepare(question, history)
        assert in_chat.messages == alone.messages  # no history tokens to read before the first one
        assert "Earlier in this conversation" not in in_chat.messages[-1].text


def test_a_follow_up_recalls_only_the_previous_exchange_without_its_citation_marks(make_answerer):
    answerer = make_answerer()
    history = [
        ("Siapa Perdana Menteri Rusia?", "Dmitry Medvedev [1]."),
        ("Siapa Duta Besar Rusia untuk NATO?", "Alexander Grushko [1][2]."),
    ]
    for question in ("Apa kata dia?", "And then?"):
        user = answerer.prepare(question, history).messages[-1].text
        assert "Q: Siapa Duta Besar Rusia untuk NATO?\nA: Alexander Grushko." in user
        assert "Medvedev" not in user and "Grushko [" not in user


def test_bad_questions_are_refused(make_answerer):
    answerer = make_answerer()
    for bad in ("", "   \n\t", "\x00\x01", "🙂🙂"):
        with pytest.raises(InputError):
            answerer.answer(bad)
    with pytest.raises(InputError, match="limit is"):
        answerer.answer("kata " * 20_000)  # 100,000 characters


def test_split_answer_moves_leading_markers_back():
    sentences = split_answer("Kerry bertemu Lavrov. [2] Mereka sepakat [1, 3].")
    assert [(s.text, s.markers) for s in sentences] == [("Kerry bertemu Lavrov.", (2,)), ("Mereka sepakat.", (1, 3))]


def test_language_detection():
    assert detect_language("Siapa yang bertemu Lavrov di Paris?") == "id"
    assert detect_language("Who met Lavrov in Paris?") == "en"
    assert detect_language("Lavrov?", fallback="id") == "id"


def test_prompts_render_strictly(tmp_path: Path):
    prompts = load_prompts(REPO_ROOT / "prompts")
    with pytest.raises(ConfigError, match="missing variables"):
        prompts.render("user.txt", history="", passages="", question="q")
    for f in (REPO_ROOT / "prompts").iterdir():
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "user.txt").write_text("{question} {colour}", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected exactly"):
        load_prompts(tmp_path)


@pytest.mark.parametrize(
    "question",
    [
        "Кто посол России в НАТО?",  # another script
        "北约大使是谁？",
        "<script>alert('x')</script> siapa duta besar?",
        "'; DROP TABLE chunks; -- siapa duta besar Rusia?",
        "Siapa\x00 duta\x07 besar\u200b Rusia untuk NATO?",
        "NATO " * 300,
    ],
)
def test_odd_questions_get_an_answer_or_a_decline_never_a_crash(make_answerer, question):
    answerer = make_answerer("Duta Besar Rusia untuk NATO adalah Alexander Grushko [1].")
    answer = answerer.answer(question)
    assert answer.declined or answer.citations
    assert "\x00" not in answer.question


def test_unsupported_closing_clause_is_cut_and_reported(make_answerer):
    probe = make_answerer()
    question = "Berapa lama Lavrov dan Kerry bertemu di Paris?"
    n = shown_index(probe, question, "paris.txt")
    answerer = make_answerer(f"Lavrov dan Kerry bertemu di Paris selama tiga jam, pada tahun 1999 [{n}].")
    answer = answerer.answer(question)
    assert not answer.declined
    assert answer.text == f"Lavrov dan Kerry bertemu di Paris selama tiga jam [{n}]."
    assert answer.dropped_sentences == ("pada tahun 1999.",)


def test_words_of_the_question_are_not_new_names_but_its_own_names_must_be_found():
    from rag.steps.answer.grounding import check_support

    passage = ["Oleg Syromolotov diangkat menjadi wakil menteri luar negeri untuk kontraterorisme pada 2015."]
    sentence = "Oleg Syromolotov became Deputy Foreign Minister for Counter-Terrorism in 2015."

    def similarity(_sentence: str, _n: int) -> float:
        return 0.81  # close, as a translation is; too far to support a sentence without anchors

    asked = "Who became deputy foreign minister for counter-terrorism in 2015?"
    support = check_support(sentence, passage, similarity, [1], question=asked)
    assert support.supported and support.name_overlap == 1.0  # "Counter-Terrorism" too
    assert not check_support(sentence, passage, similarity, [1]).supported  # capitalised words, not found
    claim = ["Alexander Grushko mengatakan tidak ada agenda positif dengan NATO."]
    invented = "Donald Trump said NATO had no positive agenda."
    support = check_support(invented, claim, similarity, [1], question="What did Donald Trump say about NATO?")
    assert not support.supported and "names" in support.reason


def test_a_grounded_reply_that_names_another_entity_declines(make_answerer):
    # the passage is about Russia's ambassador to NATO; the question asks about the one to the EU
    answerer = make_answerer("Alexander Grushko [1].")
    answer = answerer.answer("Siapa Duta Besar Rusia untuk Uni Eropa?")
    assert answer.declined and "never mention uni, eropa" in answer.decline_reason


def test_a_grounded_reply_to_a_question_about_another_number_declines(make_answerer):
    # the article counts 500 Russians fighting with ISIS; the question asks about 800 of them
    probe = make_answerer()
    n = shown_index(probe, "Siapa yang mengatakan 800 warga Rusia ikut berperang bersama ISIS?", "paris.txt")
    reply = f"Kerry mengatakan warga Rusia ikut berperang bersama ISIS [{n}]."
    answer = make_answerer(reply).answer("Siapa yang mengatakan 800 warga Rusia ikut berperang bersama ISIS?")
    assert answer.declined and answer.decline_reason == "answers_question: the cited articles never mention 800"
    same = make_answerer(reply).answer("Siapa yang mengatakan 500 warga Rusia ikut berperang bersama ISIS?")
    assert not same.declined and "Kerry" in same.text


def test_a_grounded_reply_that_restates_the_question_declines(make_answerer):
    answerer = make_answerer("Lavrov dan Kerry bertemu di Paris [1].")
    answer = answerer.answer("Kapan Lavrov dan Kerry bertemu di Paris?")
    # it adds no word, name or number to the question: grounding drops it before the kind is asked
    assert answer.declined and answer.decline_reason == "grounding"
    assert answer.dropped_sentences == ("Lavrov dan Kerry bertemu di Paris.",)


def test_a_flipped_negation_is_not_an_answer(make_answerer):
    probe = make_answerer()
    n = shown_index(probe, "Apakah Grushko mengatakan ada agenda positif dengan NATO?", "nato.txt")
    answerer = make_answerer(f"Grushko mengatakan ada agenda positif dengan NATO [{n}].")
    answer = answerer.answer("Apakah Grushko mengatakan ada agenda positif dengan NATO?")
    assert answer.declined and answer.dropped_sentences


def articles_answerer(tmp_path: Path, articles: dict[str, str]):
    """Answerers over a corpus of ``articles`` (file name -> text), each with its scripted replies."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in articles.items():
        (corpus / name).write_text(text, encoding="utf-8")
    retriever = fake_retriever(corpus, tmp_path / "index")
    settings = Settings(index_dir=tmp_path / "index", k=3, min_evidence=0.05)
    prompts = load_prompts(settings.prompts_dir)

    def answerer(*replies: str) -> Answerer:
        chat = ScriptedChatModel(replies=list(replies))
        count = lambda t: len(t.split())  # noqa: E731
        known = Articles(retriever.index.documents)
        return Answerer(retriever, retriever.embedder, chat, prompts, count, answer_params(settings), known)

    return answerer


def test_who_wrote_it_is_answered_from_the_byline_or_declined(tmp_path: Path):
    answerer = articles_answerer(
        tmp_path,
        {
            "opini.txt": "Banjir Jakarta dan tata kota\n\nBanjir kembali merendam Jakarta pada Senin.\n\n"
            "Dewi Lestari adalah peneliti senior di Pusat Kajian Kota.",
            "berita.txt": "Gempa di Cianjur\n\nGempa mengguncang Cianjur pada Selasa.",
        },
    )
    byline = answerer("Penulisnya adalah Dewi Lestari [1].")
    answer = byline.answer("Siapa penulis opini tentang banjir Jakarta dan tata kota?")
    assert not answer.declined and answer.citations[0].chunk.chunk_id == "opini.txt#author"
    assert answer.citations[0].chunk.text.startswith("Dewi Lestari adalah peneliti senior")
    # the model names someone else (a person quoted, a reader's guess): the byline answers instead
    quoted = answerer("Penulisnya adalah Joko Widodo [2].")
    answer = quoted.answer("Siapa penulis opini tentang banjir Jakarta dan tata kota?")
    assert not answer.declined and answer.text == "Dewi Lestari [1]."
    assert answer.citations[0].chunk.chunk_id == "opini.txt#author"
    assert answer.dropped_sentences == ("Penulisnya adalah Joko Widodo [2].",)
    none = answerer()  # no reply scripted: the model must not be called
    answer = none.answer("Siapa penulis berita gempa Cianjur?")
    assert answer.declined and "do not say who wrote" in answer.decline_reason


def test_when_it_was_published_is_answered_from_its_date_line_or_declined(tmp_path: Path):
    answerer = articles_answerer(
        tmp_path,
        {
            "banjir.txt": "Banjir Jakarta\nDiterbitkan: Senin, 6 Januari 2020 09:30 WIB\n\n"
            "Banjir merendam Jakarta pada 1 Januari 2020 setelah hujan deras.",
            "gempa.txt": "Gempa di Cianjur\n\nGempa mengguncang Cianjur pada Senin, 21 November 2022.",
        },
    )
    dated = answerer("Berita itu diterbitkan pada 6 Januari 2020 [1].")
    answer = dated.answer("Kapan berita banjir Jakarta diterbitkan?")
    assert not answer.declined and answer.citations[0].chunk.chunk_id == "banjir.txt#date"
    assert answer.citations[0].chunk.text == "Diterbitkan: Senin, 6 Januari 2020 09:30 WIB"
    # no date line: the date of the earthquake it reports is no answer, and the model is not asked
    answer = answerer().answer("Kapan berita gempa Cianjur diterbitkan?")
    assert answer.declined and "do not say when they were published" in answer.decline_reason
