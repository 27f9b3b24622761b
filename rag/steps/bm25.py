"""BM25 over chunks with Indonesian-aware tokenisation (lowercase words, optional stop words and
Sastrawi stemming), scored by bm25s. Scores are non-negative; higher is better."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rag.core.errors import IndexError_
from rag.core.text import stopwords as all_stopwords
from rag.core.text import words as split_words

# Tuned on FacQA (docs/EVALUATION.md): short news passages favour a lower k1 and b.
K1 = 0.9
B = 0.4


@functools.lru_cache(maxsize=1)
def _stemmer():
    from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

    return StemmerFactory().create_stemmer()


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer().stem(word) or word


class Tokenizer:
    """Lowercase ``\\w+`` words; optionally without stop words (Indonesian + English) and stemmed."""

    def __init__(self, *, stem: bool, stopwords: bool) -> None:
        self.stem = stem
        self.stopwords = stopwords
        self._stop = all_stopwords() if stopwords else frozenset()

    def __call__(self, text: str) -> list[str]:
        words = [w for w in split_words(text) if w not in self._stop]
        if self.stem:
            words = [_stem(w) for w in words]
        return words

    def params(self) -> dict:
        return {"tokenizer": "lowercase \\w+", "stem": self.stem, "stopwords": self.stopwords}


class BM25Index:
    def __init__(self, model, tokenizer: Tokenizer, n_docs: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.n_docs = n_docs

    @classmethod
    def build(cls, texts: Sequence[str], tokenizer: Tokenizer) -> BM25Index:
        import bm25s

        model = bm25s.BM25(k1=K1, b=B)
        if texts:  # bm25s cannot index an empty corpus; an empty index simply finds nothing
            tokens = [tokenizer(t) or ["\u2205"] for t in texts]  # an empty chunk still needs a row
            model.index(tokens, show_progress=False)
        return cls(model, tokenizer, len(texts))

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """(row, score) pairs, best first; rows with score 0 are left out."""
        if self.n_docs == 0:
            return []
        vocab = self.model.vocab_dict
        ids = [vocab[t] for t in self.tokenizer(query) if t in vocab]
        if not ids:
            return []
        scores = self.model.get_scores(ids)
        k = min(k, self.n_docs)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.n_docs:
            self.model.save(str(folder), show_progress=False)
        params = {**self.tokenizer.params(), "k1": self.model.k1, "b": self.model.b, "n_docs": self.n_docs}
        (folder / "tokenizer.json").write_text(json.dumps(params), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, n_docs: int) -> BM25Index:
        import bm25s

        try:
            params = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
            if n_docs:
                model = bm25s.BM25.load(str(folder), load_corpus=False, mmap=False, show_progress=False)
            else:
                model = bm25s.BM25(k1=params["k1"], b=params["b"])
        except (OSError, ValueError, KeyError) as e:
            raise IndexError_(f"BM25 data in {folder} is unreadable ({e}); run `rag ingest --rebuild`") from e
        return cls(model, Tokenizer(stem=params["stem"], stopwords=params["stopwords"]), n_docs)
