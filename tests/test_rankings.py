"""Whether two question sets rank the retrieval configurations alike (rag eval --compare)."""

import random

import pytest

from rag.core.errors import InputError
from rag.tools.evaluation.rankings import compare_rankings, kendall_tau, render_comparison


def report(means: dict[str, float], n: int, seed: int, spread: float = 0.1) -> dict:
    """A report.json whose configurations score ``means`` on average over ``n`` questions."""
    rng = random.Random(seed)
    noise = [rng.uniform(-spread, spread) for _ in range(n)]  # shared: the questions' own difficulty
    return {
        "retrieval": [
            {"name": name, "per_question": [{"qid": f"q{i}", "ndcg@10": m + noise[i]} for i in range(n)]}
            for name, m in means.items()
        ]
    }


def test_clear_differences_in_the_same_order_agree_and_in_the_other_order_disagree():
    a = report({"bm25": 0.6, "dense": 0.8}, 100, 1)
    same = compare_rankings(a, report({"bm25": 0.5, "dense": 0.9}, 80, 2))
    assert same.agree and same.pairs[0].verdict == "agree" and same.tau == 1.0
    other = compare_rankings(a, report({"bm25": 0.9, "dense": 0.5}, 80, 3))
    assert not other.agree and other.pairs[0].verdict == "disagree" and other.tau == -1.0
    assert "**Disagree**" in render_comparison(other, ("a", "b"))


def test_a_difference_within_the_noise_is_a_tie_not_an_agreement():
    rng = random.Random(4)
    rows = [rng.random() for _ in range(30)]
    noisy = {  # the two configurations differ question by question, not on average
        "retrieval": [
            {"name": "bm25", "per_question": [{"qid": str(i), "ndcg@10": v} for i, v in enumerate(rows)]},
            {"name": "hybrid", "per_question": [{"qid": str(i), "ndcg@10": v} for i, v in enumerate(rows[::-1])]},
        ]
    }
    c = compare_rankings(noisy, report({"bm25": 0.5, "hybrid": 0.9}, 80, 5))
    assert c.pairs[0].verdict == "undecided (one set separates them)" and c.agree
    assert "Separated by both sets: 0 of 1" in render_comparison(c, ("a", "b"))


def test_kendall_tau_and_bad_reports():
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == 1.0 and kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    with pytest.raises(InputError, match="no retrieval results"):
        compare_rankings({"answers": {}}, report({"bm25": 0.5, "dense": 0.6}, 10, 6))
    with pytest.raises(InputError, match="fewer than two configurations"):
        compare_rankings(report({"bm25": 0.5}, 10, 7), report({"bm25": 0.5, "dense": 0.6}, 10, 8))
