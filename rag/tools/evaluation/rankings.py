"""Do two question sets rank the retrieval configurations alike? (a generated set against a benchmark's
own questions, on the same passages.)

Each set gives every configuration a mean metric (nDCG@10 by default) over its questions. Comparing
the two orders by Kendall's τ alone counts a pair that one set cannot tell apart (a difference within
the noise of 50-110 questions) as much as a real disagreement, so each pair of configurations is also
judged on each set with a paired bootstrap: the questions are resampled with replacement (the same
resample for both configurations) and the 95 % interval of the difference in means is taken. A set
*separates* a pair when that interval excludes 0. The two sets **agree** when no pair that both
separate is ordered differently; a pair that only one separates is reported as undecided, not as
agreement.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rag.core.errors import InputError

ROUNDS = 2000  # bootstrap resamples: the interval's ends move by well under 0.005 between seeds
LEVEL = 0.95


@dataclass(frozen=True)
class Difference:
    """Mean metric of ``a`` minus that of ``b`` on one set, with its bootstrap interval."""

    mean: float
    low: float
    high: float

    @property
    def separates(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class PairVerdict:
    a: str
    b: str
    first: Difference
    second: Difference

    @property
    def verdict(self) -> str:
        if self.first.separates and self.second.separates:
            return "agree" if (self.first.mean > 0) == (self.second.mean > 0) else "disagree"
        if self.first.separates or self.second.separates:
            return "undecided (one set separates them)"
        return "tie on both"


@dataclass(frozen=True)
class RankingComparison:
    metric: str
    configs: tuple[str, ...]
    means: tuple[dict[str, float], dict[str, float]]
    questions: tuple[int, int]
    tau: float
    pairs: tuple[PairVerdict, ...]

    @property
    def agree(self) -> bool:
        return not any(p.verdict == "disagree" for p in self.pairs)


def per_question(report: dict[str, Any], metric: str) -> dict[str, dict[str, float]]:
    """configuration -> qid -> metric, from a ``rag eval`` report.json."""
    out: dict[str, dict[str, float]] = {}
    for cfg in report.get("retrieval", []):
        rows = cfg.get("per_question") or []
        if rows and metric not in rows[0]:
            raise InputError(f"the report has no {metric!r} per question (it has {', '.join(sorted(rows[0]))})")
        out[cfg["name"]] = {str(r["qid"]): float(r[metric]) for r in rows}
    if not out:
        raise InputError("the report holds no retrieval results (run `rag eval` without --answers only)")
    return out


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-a of two score lists over the same items (ties count as neither)."""
    pairs = list(itertools.combinations(range(len(x)), 2))
    if not pairs:
        return 1.0
    s = sum(_sign(x[i] - x[j]) * _sign(y[i] - y[j]) for i, j in pairs)
    return s / len(pairs)


def _sign(v: float) -> int:
    return (v > 0) - (v < 0)


def bootstrap_difference(a: Sequence[float], b: Sequence[float], rounds: int, rng: random.Random) -> Difference:
    """Mean of a - b (paired, question by question) and its percentile interval at LEVEL."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    tail = (1 - LEVEL) / 2
    return Difference(sum(diffs) / n, means[int(tail * rounds)], means[min(rounds - 1, int((1 - tail) * rounds))])


def compare_rankings(
    first: dict[str, Any], second: dict[str, Any], *, metric: str = "ndcg@10", rounds: int = ROUNDS, seed: int = 0
) -> RankingComparison:
    """The two reports' rankings of the configurations both evaluated."""
    sets = per_question(first, metric), per_question(second, metric)
    configs = tuple(c for c in sets[0] if c in sets[1])
    if len(configs) < 2:
        raise InputError("the two reports share fewer than two configurations: nothing to rank")
    rng = random.Random(seed)
    qids = []
    for s in sets:
        shared = set.intersection(*(set(s[c]) for c in configs))
        if not shared:
            raise InputError("a report has no question answered by every configuration")
        qids.append(sorted(shared))
    means = tuple({c: sum(s[c][q] for q in ids) / len(ids) for c in configs} for s, ids in zip(sets, qids))
    pairs = []
    for a, b in itertools.combinations(configs, 2):
        diffs = [
            bootstrap_difference([s[a][q] for q in ids], [s[b][q] for q in ids], rounds, rng)
            for s, ids in zip(sets, qids)
        ]
        pairs.append(PairVerdict(a, b, diffs[0], diffs[1]))
    tau = kendall_tau([means[0][c] for c in configs], [means[1][c] for c in configs])
    return RankingComparison(metric, configs, (means[0], means[1]), (len(qids[0]), len(qids[1])), tau, tuple(pairs))


def render_comparison(c: RankingComparison, names: tuple[str, str]) -> str:
    """Markdown: the means side by side, each pair's differences with intervals, the verdict."""
    lines = [
        f"| configuration | {names[0]} ({c.questions[0]} q) | {names[1]} ({c.questions[1]} q) |",
        "|---|---|---|",
        *(f"| {cfg} | {c.means[0][cfg]:.3f} | {c.means[1][cfg]:.3f} |" for cfg in c.configs),
        "",
        f"Kendall τ over the means: {c.tau:.2f}",
        "",
        f"| pair ({c.metric}, a - b) | {names[0]}: difference [95 % interval] | {names[1]} | verdict |",
        "|---|---|---|---|",
    ]
    for p in c.pairs:
        cells = [f"{d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}]" for d in (p.first, p.second)]
        lines.append(f"| {p.a} - {p.b} | {cells[0]} | {cells[1]} | {p.verdict} |")
    both = [p for p in c.pairs if p.verdict in ("agree", "disagree")]
    one = sum(p.verdict.startswith("undecided") for p in c.pairs)
    same_sign = sum(_sign(p.first.mean) == _sign(p.second.mean) for p in c.pairs)
    verdict = (
        "**Agree**: no pair that both sets separate is ordered differently"
        if c.agree
        else f"**Disagree**: {sum(p.verdict == 'disagree' for p in both)} pair(s) that both sets separate are ordered differently"
    )
    lines += [
        "",
        f"{verdict}. Separated by both sets: {len(both)} of {len(c.pairs)} pairs; by one only: {one}; by neither: "
        f"{len(c.pairs) - len(both) - one}. Same sign of the difference: {same_sign} of {len(c.pairs)} pairs.",
    ]
    return "\n".join(lines)
