"""Grounding checks only what a sentence adds to the question: examples written for each class."""

from __future__ import annotations

from rag.steps.answer.grounding import GroundingThresholds, check_support, ground


def close(_sentence: str, _n: int) -> float:
    return 0.90  # close enough in the embedder's space to support a sentence on its own


def translated(_sentence: str, _n: int) -> float:
    return 0.81  # a translation's distance: support needs a name or number of the sentence in the passage


def test_a_sentence_that_restates_the_question_is_no_answer_however_close():
    question = "What type of aircraft did the Russian fighter intercept over the Baltic Sea?"
    passage = ["Jet tempur Rusia mencegat pesawat pengintai AS RC-135 di atas Laut Baltik."]
    restated = "A Russian fighter intercepted an aircraft over the Baltic Sea."
    support = check_support(restated, passage, close, [1], question=question)
    assert not support.supported and support.reason == "the sentence adds nothing to the question"
    answered = "The Russian fighter intercepted an RC-135 over the Baltic Sea."
    assert check_support(answered, passage, close, [1], question=question).supported


def test_saying_where_a_claim_comes_from_adds_nothing_to_the_question():
    """Saying "reported" or "according to the article" names the source of a restated question, not an answer."""
    question = "What did the ministry say the farmers of Kediri must plant after the floods?"
    passage = ["Kementerian Pertanian meminta petani Kediri menanam jagung setelah banjir surut."]
    restated = "According to the article, the ministry reported that the farmers of Kediri must plant after the floods."
    support = check_support(restated, passage, close, [1], question=question)
    assert not support.supported and support.reason == "the sentence adds nothing to the question"
    answered = "The ministry said the farmers of Kediri must plant maize after the floods."
    assert check_support(answered, passage, close, [1], question=question).supported


def test_a_name_of_the_question_may_be_found_in_another_shown_passage():
    question = "Which career FSB official became Russia's deputy foreign minister in 2015?"
    cited = "Pejabat karir FSB Oleg Syromolotov diberi posisi baru pada tahun 2015 sebagai wakil menteri luar negeri."
    other = "Kementerian Luar Negeri Rusia menolak berkomentar."
    sentence = "Oleg Syromolotov became Russia's deputy foreign minister in 2015."
    support = check_support(sentence, [cited], translated, [1], question=question, context=[cited, other])
    assert support.supported
    # nowhere in the evidence shown: the question's premise is not what these passages are about
    alone = check_support(sentence, [cited], translated, [1], question=question, context=[cited])
    assert not alone.supported and "names" in alone.reason


def test_a_name_of_the_question_may_be_found_in_a_retrieved_passage_the_model_was_not_shown():
    """However few passages the model reads, the question's names are checked against all retrieved."""
    question = "Which career FSB official became Russia's deputy foreign minister in 2015?"
    cited = "Pejabat karir FSB Oleg Syromolotov diberi posisi baru pada tahun 2015 sebagai wakil menteri luar negeri."
    not_shown = "Kementerian Luar Negeri Rusia menolak berkomentar."
    reply = "Oleg Syromolotov became Russia's deputy foreign minister in 2015 [1]."
    t = GroundingThresholds()
    assert ground(reply, [cited], translated, question, t, context=[cited, not_shown]).kept
    assert not ground(reply, [cited], translated, question, t).kept  # the shown passage alone does not know it


def test_the_name_a_who_question_is_answered_with_must_be_in_the_passage():
    question = "Who is the Ukrainian president whom Putin was due to meet in Milan?"
    passage = ["Putin menuju ke Milan, Italia, untuk melakukan pembicaraan dengan presiden Ukraina Petro Poroshenko."]
    invented = "In Milan, Putin was due to meet Ukrainian president Viktor Yanukovych."
    support = check_support(invented, passage, close, [1], question=question)
    assert not support.supported and support.reason == "the name it answers with is not in the passage"
    found = "In Milan, Putin was due to meet Ukrainian president Petro Poroshenko."
    assert check_support(found, passage, close, [1], question=question).supported


def test_a_yes_no_answer_by_its_polarity_needs_the_passage_to_agree():
    question = "Apakah AS bersedia mencabut sanksi terhadap Rusia?"
    negated = [
        "Lavrov mengakui pertemuan itu menghasilkan sesuatu, meski AS belum bersedia mencabut sanksi terhadap Rusia."
    ]
    plain = ["Lavrov mengatakan AS bersedia mencabut sanksi terhadap Rusia tahun depan."]
    answer = "AS belum bersedia mencabut sanksi terhadap Rusia."
    assert check_support(answer, negated, close, [1], question=question).supported
    assert not check_support(answer, plain, close, [1], question=question).supported


def test_a_bare_yes_is_an_answer_only_where_the_passage_can_be_read_for_it():
    question = "Did Russia and the US agree to share intelligence on ISIS?"
    english = ["Russia and the US agreed to share intelligence on ISIS militants, Kerry said."]
    indonesian = ["AS dan Rusia akan mulai berbagi informasi intelijen mengenai militan ISIS, kata Kerry."]
    answer = "Yes, Russia and the US agreed to share intelligence on ISIS."
    assert check_support(answer, english, close, [1], question=question).supported
    # across languages no clause can be read for its polarity: a bare "Yes" is not taken on trust
    assert not check_support(answer, indonesian, close, [1], question=question).supported
    refused = ["Russia and the US never agreed to share intelligence on ISIS militants, Kerry said."]
    assert not check_support(answer, refused, close, [1], question=question).supported


def test_a_clause_in_another_language_that_shares_only_names_cannot_be_read_for_a_yes():
    question = "Did Kerry and Lavrov agree in Paris to share intelligence on ISIS?"
    answer = "Yes, Kerry and Lavrov agreed in Paris to share intelligence on ISIS."
    # Kerry, Lavrov, Paris and ISIS are written alike in both languages: without a negation the clause
    # they find may say anything
    agreed = "Di Paris, Kerry dan Lavrov sepakat berbagi informasi intelijen mengenai ISIS."
    refused = "Di Paris, Kerry dan Lavrov tidak pernah sepakat berbagi informasi intelijen mengenai ISIS."
    for passage in (agreed, refused):
        assert not check_support(answer, [passage], close, [1], question=question).supported
    # a negation is written in the passage's own words: the clause the names find does carry it
    denial = "No, Kerry and Lavrov did not agree in Paris to share intelligence on ISIS."
    assert check_support(denial, [refused], close, [1], question=question).supported
    assert not check_support(denial, [agreed], close, [1], question=question).supported


def test_in_the_passages_own_language_closeness_alone_supports_nothing():
    # the model invents a reaction in the passage's language: close in the embedder's space (same
    # topic, same people), but none of what it adds is written there
    question = "Bagaimana tanggapan Theresa May terhadap pesan Putin tentang kerja sama melawan teroris?"
    passage = ["Putin mengatakan Rusia siap bekerja sama melawan teroris dengan mitra Inggris, kata Kremlin."]
    invented = "Theresa May menggambarkan pesan Putin itu sebagai langkah yang tidak tepat."
    kept = check_support(invented, passage, close, [1], question=question, same_language=True)
    assert not kept.supported and kept.reason == "the passage does not say this"
    # across languages its words cannot be looked up, so closeness still decides
    assert check_support(invented, passage, close, [1], question=question, same_language=False).supported
    # and a same-language sentence whose words are there is supported as before
    stated = "Putin mengatakan Rusia siap bekerja sama dengan mitra Inggris."
    assert check_support(stated, passage, close, [1], question=question, same_language=True).supported
    # a new number the passage holds still lets closeness decide ("berumur 59 tahun" over "(59)")
    aged = check_support(
        "Sonthi berumur 59 tahun.",
        ["Panglima baru, Jenderal Sonthi (59), dilantik kemarin."],
        close,
        [1],
        question="Berapakah umur Sonthi?",
        same_language=True,
    )
    assert aged.supported
