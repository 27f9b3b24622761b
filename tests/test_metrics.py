import math
import random

import pytest

from rag.tools.evaluation.metrics import mrr_at, ndcg_at, query_metrics, recall_at


def test_hand_computed_examples():
    ranked = ["a", "b", "c", "d"]
    relevant = {"c", "x"}
    assert recall_at(ranked, relevant, 1) == 0.0
    assert recall_at(ranked, relevant, 3) == 1.0
    assert mrr_at(ranked, relevant) == pytest.approx(1 / 3)
    # DCG = 1/log2(4) = 0.5; ideal with 2 relevant = 1 + 1/log2(3)
    assert ndcg_at(ranked, relevant) == pytest.approx(0.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at(["c", "x"], relevant) == pytest.approx(1.0)
    assert query_metrics([], {"a"})["ndcg@10"] == 0.0


@pytest.mark.slow
def test_agrees_with_ranx():
    ranx = pytest.importorskip("ranx")
    rng = random.Random(7)
    qrels, run, ours = {}, {}, []
    for q in range(40):
        docs = [f"d{i}" for i in range(30)]
        relevant = set(rng.sample(docs, rng.randint(1, 3)))
        ranked = rng.sample(docs, 12)
        qrels[f"q{q}"] = {d: 1 for d in relevant}
        run[f"q{q}"] = {d: float(100 - i) for i, d in enumerate(ranked)}
        ours.append(query_metrics(ranked, relevant))
    scores = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), ["hit_rate@1", "hit_rate@5", "mrr@10", "ndcg@10"])
    mean = {k: sum(m[k] for m in ours) / len(ours) for k in ours[0]}
    assert mean["recall@1"] == pytest.approx(scores["hit_rate@1"])
    assert mean["recall@5"] == pytest.approx(scores["hit_rate@5"])
    assert mean["mrr@10"] == pytest.approx(scores["mrr@10"])
    assert mean["ndcg@10"] == pytest.approx(scores["ndcg@10"])
