"""The evidence gate as a pure function: hits, evidence and thresholds in, a decision and its reason out."""

from rag.core.types import Chunk, Hit
from rag.steps.answer.gate import GateParams, evidence_gate

PARAMS = GateParams(min_evidence=0.5)


def hits(*texts: str) -> list[Hit]:
    return [Hit(Chunk(f"c{i}", "d", 0, len(t), t), 1.0, i + 1, "hybrid") for i, t in enumerate(texts)]


NATO = hits("Duta Besar Rusia untuk NATO Alexander Grushko mengatakan tidak ada agenda positif.")


def test_strong_evidence_passes():
    decision = evidence_gate("Siapa Duta Besar Rusia untuk NATO?", "id", NATO, 0.9, PARAMS)
    assert decision.passed and decision.evidence == 0.9 and decision.reason == ""


def test_nothing_retrieved_declines():
    decision = evidence_gate("Siapa Duta Besar Rusia untuk NATO?", "id", [], 0.0, PARAMS)
    assert not decision.passed and decision.reason == "nothing retrieved"


def test_weak_closest_passage_declines_with_its_cosine():
    decision = evidence_gate("Siapa Duta Besar Rusia untuk NATO?", "id", NATO, 0.3, PARAMS)
    assert not decision.passed and "0.300 < 0.5" in decision.reason


def test_names_of_the_question_missing_from_the_passages_decline():
    decision = evidence_gate("What did Donald Trump tell Jens Stoltenberg?", "en", NATO, 0.9, PARAMS)
    assert not decision.passed and "names in the question" in decision.reason


def test_a_same_language_question_sharing_no_key_words_declines():
    decision = evidence_gate("berapa jumlah penduduk kota itu sekarang?", "id", NATO, 0.9, PARAMS)
    assert not decision.passed and "key words" in decision.reason


def test_a_cross_lingual_question_is_not_held_to_word_overlap():
    decision = evidence_gate("who is the ambassador to nato?", "en", NATO, 0.9, PARAMS)
    assert decision.passed
