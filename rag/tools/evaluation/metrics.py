"""Ranking metrics with binary relevance, standard definitions (as trec_eval / ranx compute them).

- recall@k ("hit rate", as the FacQA reference line reports it): 1 if any relevant item is in the
  top k, else 0.
- mrr@10: 1 / rank of the first relevant item within the top 10, else 0.
- ndcg@10: DCG = sum over the top 10 of rel_i / log2(i + 1), divided by the DCG of the ideal ranking of
  all relevant items (binary gains).
Each function takes the ranked ids and the set of relevant ids of one query.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

KS = (1, 3, 5, 10)


def recall_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    return 1.0 if any(r in relevant for r in ranked[:k]) else 0.0


def mrr_at(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    for i, r in enumerate(ranked[:k], start=1):
        if r in relevant:
            return 1.0 / i
    return 0.0


def ndcg_at(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, r in enumerate(ranked[:k], start=1) if r in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def query_metrics(ranked: Sequence[str], relevant: set[str]) -> dict[str, float]:
    out = {f"recall@{k}": recall_at(ranked, relevant, k) for k in KS}
    out["mrr@10"] = mrr_at(ranked, relevant)
    out["ndcg@10"] = ndcg_at(ranked, relevant)
    return out


def mean_metrics(per_query: Sequence[dict[str, float]]) -> dict[str, float]:
    if not per_query:
        return {}
    keys = per_query[0].keys()
    return {k: sum(q[k] for q in per_query) / len(per_query) for k in keys}
