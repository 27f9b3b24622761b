#!/usr/bin/env python
"""Loading + chunking time of one-line documents of growing size: the work must grow linearly.

Each size is one .txt file holding a single line (no newline) of synthetic Indonesian-like sentences,
with abbreviations, numbers and quotes. Timed: load_corpus on the folder (read, decode, normalise,
title), split_sentences, and chunk_document with two token counters: a fast whitespace split, and
the bundled embedder's own tokenizer, counting in batches as ingest does (OnnxInt8Embedder's
count_tokens / count_tokens_many), when it is built, else a word count like the tests' hashing
embedder. Prints one row per size.

    .venv/bin/python scripts/bench_long_text.py
    .venv/bin/python scripts/bench_long_text.py --sizes 50k,200k --max-tokens 160 --no-tokenizer
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

# the checkout this script sits in, ahead of any installed copy
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.steps.chunking import chunk_document, split_sentences  # noqa: E402
from rag.steps.corpus import load_corpus  # noqa: E402

# one word list, read as prose
_WORDS = """
yang dan di ke dari untuk dengan pada dalam tidak akan telah sudah juga oleh sebagai karena tersebut
mereka pemerintah presiden menteri luar negeri rusia amerika serikat pertemuan berlangsung selama tiga
jam kedua negara sepakat berbagi informasi intelijen mengenai militan kelompok warga ikut berperang
bersama kata duta besar nato mengatakan agenda positif sebuah jet terbang jarak meter kapal perusak
laut baltik perdana sanksi barat merusak hubungan wawancara saluran televisi ekonomi harga minyak
dunia turun naik persen tahun lalu bulan depan rapat kabinet membahas anggaran keamanan
""".split()  # noqa: SIM905
_LEADS = ["Dr.", "St.", "Jl.", "Prof.", "H.", "Sdr."]
_ENDS = [".", ".", ".", "!", "?", '."', "...", ".)"]


def synthetic_line(size_chars: int, seed: int = 0) -> str:
    """Sentences of 6-24 words on one line, exactly ``size_chars`` characters long."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = 0
    while total < size_chars:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 24))]
        if rng.random() < 0.2:
            words.insert(rng.randrange(len(words)), rng.choice(_LEADS))
        if rng.random() < 0.2:
            words.insert(rng.randrange(len(words)), f"{rng.randint(1, 99)}.{rng.randint(100, 999)}")
        sentence = " ".join(words).capitalize() + rng.choice(_ENDS)
        parts.append(sentence)
        total += len(sentence) + 1
    return " ".join(parts)[:size_chars].rstrip()


def whitespace_tokens(text: str) -> int:
    return len(text.split()) + 2


_WORD = re.compile(r"\w+")


def hashing_tokens(text: str) -> int:
    return len(_WORD.findall(text)) + 2


Count = Callable[[str], int]
CountMany = Callable[[Sequence[str]], list[int]] | None


def embedder_counter() -> tuple[str, Count, CountMany]:
    """The bundled embedder's tokenizer, counted as OnnxInt8Embedder.count_tokens(_many) do; else words."""
    try:
        from tokenizers import Tokenizer

        from rag.models.registry import BUNDLED_EMBEDDER, embedder_source
        from rag.settings import load_settings

        folder = Path(embedder_source(load_settings().cache_dir, BUNDLED_EMBEDDER))
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as e:  # noqa: BLE001 - any reason the model is not there: fall back, and say why
        print(f"(embedder tokenizer not available: {type(e).__name__}: {e}; counting \\w+ words instead)")
        return "words (hashing-like)", hashing_tokens, None
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def many(texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in tokenizer.encode_batch(["passage: " + t for t in texts])]

    return "e5 tokenizer", lambda text: len(tokenizer.encode("passage: " + text).ids), many


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def timed(work: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50k,200k,1M,5M,20M", help="characters per one-line document")
    parser.add_argument("--max-tokens", type=int, default=160, help="chunk budget (the default chunk_tokens)")
    parser.add_argument("--no-tokenizer", action="store_true", help="skip the embedder-tokenizer column")
    parser.add_argument(
        "--tokenizer-max-size",
        default="20M",
        help="largest size chunked with the embedder tokenizer (about 2 s a MB here)",
    )
    args = parser.parse_args()
    counters: list[tuple[str, Count, CountMany]] = [("whitespace", whitespace_tokens, None)]
    if not args.no_tokenizer:
        counters.append(embedder_counter())
    header = f"{'size':>8} {'load s':>8} {'split s':>8} {'sentences':>10}"
    for name, _, _ in counters:
        header += f" | {'chunk s':>8} {'chunks':>7} ({name})"
    print(header)
    for size in (parse_size(s) for s in args.sizes.split(",")):
        print(measure(size, counters, args.max_tokens, parse_size(args.tokenizer_max_size)), flush=True)


def measure(size: int, counters: list[tuple[str, Count, CountMany]], max_tokens: int, counter_limit: int) -> str:
    """One row of the table: load, split and chunk one line of ``size`` characters."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "one-line.txt").write_text(synthetic_line(size), encoding="utf-8")
        load_s, loaded = timed(lambda: load_corpus(Path(folder)))
    (doc,) = loaded.documents  # type: ignore[attr-defined]
    split_s, spans = timed(lambda: split_sentences(doc.text))
    row = f"{size:>8} {load_s:>8.2f} {split_s:>8.2f} {len(spans):>10}"  # type: ignore[arg-type]
    for i, (_, count, many) in enumerate(counters):
        if i and size > counter_limit:
            row += f" | {'-':>8} {'-':>7}"
            continue
        chunk_s, chunks = timed(partial(chunk_document, doc, count, max_tokens=max_tokens, count_many=many))
        if any(doc.text[c.start : c.end] != c.text for c in chunks):  # type: ignore[attr-defined]
            raise SystemExit(f"chunk offsets are wrong at size {size}")
        row += f" | {chunk_s:>8.2f} {len(chunks):>7}"  # type: ignore[arg-type]
    return row


if __name__ == "__main__":
    main()
