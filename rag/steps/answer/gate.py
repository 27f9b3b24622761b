"""The evidence gate: is what retrieval found strong enough to ask the model at all?

The default local model never declines by itself, so the corpus is taken not to hold an answer, and
the model is not called, when the closest passage is below ``min_evidence`` cosine, when most names
in the question appear in none of the retrieved passages, or when a question in the passages' own
language shares almost none of its key words with them. Calibrated on eval/questions.jsonl
(docs/EVALUATION.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.core.text import key_words, names, overlap, vocabulary_of
from rag.core.types import Hit
from rag.steps.language import detect_language


@dataclass(frozen=True)
class GateParams:
    min_evidence: float  # cosine of the closest passage
    min_names_found: float = 0.5  # share of the question's names found in the passages
    min_words_found: float = 0.25  # share of its key words, for a question in the passages' language
    fuzzy_name_ratio: float = 0.75
    fuzzy_word_ratio: float = 0.85


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    evidence: float  # the highest cosine between the question and a retrieved passage
    reason: str = ""  # why it did not pass


def evidence_gate(
    question: str, language: str, hits: Sequence[Hit], evidence: float, params: GateParams
) -> GateDecision:
    """Pass or decline, with the reason; ``evidence`` is the closest passage's cosine."""
    if not hits:
        return GateDecision(False, evidence, "nothing retrieved")
    if evidence < params.min_evidence:
        return GateDecision(False, evidence, f"closest passage has cosine {evidence:.3f} < {params.min_evidence}")
    texts = [h.chunk.text for h in hits]
    vocabulary = vocabulary_of(texts)
    found_names = overlap(names(question), vocabulary, params.fuzzy_name_ratio)
    if found_names is not None and found_names < params.min_names_found:
        return GateDecision(
            False, evidence, f"only {found_names:.0%} of the names in the question occur in the passages"
        )
    if language == detect_language(" ".join(texts), fallback=""):
        found_words = overlap(key_words(question), vocabulary, params.fuzzy_word_ratio)
        if found_words is not None and found_words < params.min_words_found:
            return GateDecision(
                False, evidence, f"only {found_words:.0%} of the question's key words occur in the passages"
            )
    return GateDecision(True, evidence)
