"""Sentence- and paragraph-aware chunking, sized in the embedder's own tokens.

Every chunk is an exact slice of its document: ``doc.text[chunk.start:chunk.end] == chunk.text``.
Consecutive chunks of a paragraph overlap by whole sentences. Time is linear in the length of the text
(n log n for a sentence longer than the budget), however long its lines: token counters are assumed
only to give a longer text at least as many tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.core.types import Chunk, Document

# Words after which a period does not end a sentence (titles, initials, common abbreviations).
_ABBREVIATIONS = {
    "st",
    "dr",
    "mr",
    "mrs",
    "ms",
    "prof",
    "no",
    "jl",
    "dll",
    "dsb",
    "dkk",
    "tsb",
    "yth",
    "sdr",
    "bpk",
    "ir",
    "drs",
    "h",
    "hj",
    "kh",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "u.s",
    "a.s",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "agu",
    "aug",
    "sep",
    "sept",
    "okt",
    "oct",
    "nov",
    "des",
    "dec",
}
# A run of sentence-end marks, its closing quotes/brackets, then white space. The lookbehind and the
# possessive quantifiers make each run scanned once: no backtracking, linear on any line.
_SENTENCE_END = re.compile(r"(?<![.!?…])[.!?…]++[\"'”’)\]]*+(?=\s)")
_LONGEST_ABBREVIATION = max(len(a) for a in _ABBREVIATIONS)


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    paragraph: int


def split_sentences(text: str) -> list[Span]:
    """Sentence spans (no surrounding whitespace); a newline always ends a sentence. Linear in len(text)."""
    spans: list[Span] = []
    offset = 0
    for paragraph, line in enumerate(text.split("\n")):
        line_start = offset
        offset += len(line) + 1
        start = 0
        for m in _SENTENCE_END.finditer(line):
            if _continues_sentence(line, m.start()):
                continue
            _add_span(spans, line, line_start, start, m.end(), paragraph)
            start = m.end()
        _add_span(spans, line, line_start, start, len(line), paragraph)
    return spans


def _is_word_or_dot(ch: str) -> bool:
    return ch == "." or ch == "_" or ch.isalnum()  # re's \w, and the period


def _continues_sentence(line: str, mark: int) -> bool:
    """Whether the end mark at ``mark`` follows an abbreviation or an initial, so the sentence goes on.

    The word is the run of word characters and periods right before the mark. Only a word of at most
    _LONGEST_ABBREVIATION characters can be one, so the look back stops after one character more:
    constant work per mark, where searching the whole line from its start was quadratic.
    """
    start = mark
    while start > 0 and mark - start <= _LONGEST_ABBREVIATION and _is_word_or_dot(line[start - 1]):
        start -= 1
    if start > 0 and _is_word_or_dot(line[start - 1]):
        return False  # longer than any abbreviation
    word = line[start:mark].lower().rstrip(".")
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _add_span(spans: list[Span], line: str, line_start: int, start: int, end: int, paragraph: int) -> None:
    piece = line[start:end]
    stripped = piece.strip()
    if not stripped:
        return
    lead = len(piece) - len(piece.lstrip())
    s = line_start + start + lead
    spans.append(Span(s, s + len(stripped), paragraph))


def _largest_fitting(fits: Callable[[int], bool], first: int, last: int, guess: int) -> int:
    """The largest n in [first, last] with fits(n), for fits true up to some n and false after it;
    ``first`` is taken even when it does not fit. O(log) calls: gallop from ``guess``, then bisect."""
    good, bad = first, last + 1
    if bad - good <= 1:
        return good
    probe = min(max(guess, good + 1), last)
    if fits(probe):
        good = probe
        step = 1
        while good < last:
            probe = min(good + step, last)
            if not fits(probe):
                bad = probe
                break
            good, step = probe, step * 2
    else:
        bad = probe
    while bad - good > 1:
        mid = (good + bad) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good


def _probe_chars(max_tokens: int) -> int:
    """Characters that hold far more than ``max_tokens`` tokens in any real text (64 a token, plus 1 kB)."""
    return 64 * max_tokens + 1024


def _too_long(text: str, start: int, end: int, count: Callable[[str], int], max_tokens: int) -> bool:
    """count(text[start:end]) > max_tokens, without tokenising a huge span whose prefix already is over:
    a prefix of 64 characters a token (plus 1 kB) is far over the budget in any real text."""
    probe = start + _probe_chars(max_tokens)
    if end > probe and count(text[start:probe]) > max_tokens:
        return True
    return count(text[start:end]) > max_tokens


def _split_long(text: str, span: Span, count: Callable[[str], int], max_tokens: int) -> list[Span]:
    """Cut a sentence longer than max_tokens at word boundaries (a word longer than that, at characters).

    Each piece is the longest run of words that fits, found by galloping: O(log) counts of at most about
    twice the piece each, so a sentence of any length costs O(n log n), where one count per word was O(n^2).
    Words are read from the sentence only as far as the probes reach.
    """
    pieces: list[Span] = []
    words = re.finditer(r"\S+", text[span.start : span.end])
    ahead: list[tuple[int, int]] = []  # the next words, the first of them starting the next piece
    guess = 1

    def word(k: int) -> tuple[int, int] | None:
        while len(ahead) <= k:
            m = next(words, None)
            if m is None:
                return None
            ahead.append((m.start() + span.start, m.end() + span.start))
        return ahead[k]

    def fits(k: int) -> bool:
        last = word(k)
        return last is not None and count(text[ahead[0][0] : last[1]]) <= max_tokens

    while word(0) is not None:
        k = _largest_fitting(fits, 0, span.end - span.start, guess)
        start, end = ahead[0][0], ahead[k][1]
        if k == 0 and _too_long(text, start, end, count, max_tokens):
            pieces.extend(_split_word(text, start, end, span.paragraph, count, max_tokens))
        else:
            pieces.append(Span(start, end, span.paragraph))
        guess = max(1, k)
        del ahead[: k + 1]
    return pieces


def _split_word(
    text: str, start: int, end: int, paragraph: int, count: Callable[[str], int], max_tokens: int
) -> list[Span]:
    """Cut one word longer than max_tokens into the longest character runs that fit (at least one each)."""
    pieces: list[Span] = []
    guess = 64
    while start < end:

        def fits(size: int, start: int = start) -> bool:
            return count(text[start : start + size]) <= max_tokens

        size = _largest_fitting(fits, 1, end - start, guess)
        pieces.append(Span(start, start + size, paragraph))
        start += size
        guess = size
    return pieces


def chunk_document(
    doc: Document,
    count_tokens: Callable[[str], int],
    *,
    max_tokens: int = 160,
    overlap_sentences: int = 1,
    count_many: Callable[[Sequence[str]], list[int]] | None = None,
) -> list[Chunk]:
    """Pack whole sentences into chunks of at most ``max_tokens`` (as ``count_tokens`` counts them).

    A chunk ends at a paragraph boundary once it holds half its budget; the next chunk of the same
    paragraph starts with the last ``overlap_sentences`` sentences of the previous one.

    Each sentence is counted once (``count_many``, a batch of them at a time, when given) and the
    sentences are packed by the sum of their counts, less the fixed cost (prefix and special tokens)
    that each count repeats: exact for tokenizers that cut text at white space first (SentencePiece's
    Metaspace, WordPiece) and close for the others. Every chunk is then counted whole, in one more
    batch, and a chunk over the budget (a tokenizer that did not add up) is packed again with exact
    counts. So the text is tokenized about twice, whatever the length of its lines: linear time.
    """
    text = doc.text
    spans = split_sentences(text)
    if spans and spans[0].paragraph == spans[-1].paragraph:
        # one paragraph that fits whole is one chunk: a single count instead of one per sentence
        start, end = spans[0].start, spans[-1].end
        if not _too_long(text, start, end, count_tokens, max_tokens):
            return [Chunk(f"{doc.doc_id}#{start}-{end}", doc.doc_id, start, end, text[start:end], doc.title)]
    many = count_many or (lambda texts: [count_tokens(t) for t in texts])
    sentences, own = _fitting_sentences(text, spans, count_tokens, many, max_tokens)
    fixed = max(0, 2 * count_tokens("a") - count_tokens("a a"))  # what every count repeats, for one word
    summed = [0]  # summed[k]: the tokens of sentences[:k] less their fixed costs
    for n in own:
        summed.append(summed[-1] + n - fixed)

    def estimate(first: int, last: int) -> int:
        return fixed + summed[last + 1] - summed[first]

    def exact(first: int, last: int) -> int:
        return count_tokens(text[sentences[first].start : sentences[last].end])

    paragraphs = [s.paragraph for s in sentences]
    packed = _pack(paragraphs, estimate, 0, len(sentences) - 1, max_tokens, overlap_sentences)
    counted = many([text[sentences[a].start : sentences[b].end] for a, b in packed])
    ranges: list[tuple[int, int]] = []
    for (first, last), n in zip(packed, counted, strict=True):
        if n <= max_tokens:
            ranges.append((first, last))
        else:  # the counts did not add up: this chunk again, counted whole at each step
            ranges.extend(_pack(paragraphs, exact, first, last, max_tokens, overlap_sentences))
    chunks = []
    for first, last in ranges:
        start, end = sentences[first].start, sentences[last].end
        chunks.append(Chunk(f"{doc.doc_id}#{start}-{end}", doc.doc_id, start, end, text[start:end], doc.title))
    return chunks


def _fitting_sentences(
    text: str,
    spans: list[Span],
    count_tokens: Callable[[str], int],
    many: Callable[[Sequence[str]], list[int]],
    max_tokens: int,
) -> tuple[list[Span], list[int]]:
    """The sentences, those over the budget cut at words, each with its own token count."""
    probe = _probe_chars(max_tokens)  # longer than this is over the budget in any real text: not counted
    counts = iter(many([text[s.start : s.end] for s in spans if s.end - s.start <= probe]))
    sentences: list[Span] = []
    own: list[int] = []
    for span in spans:
        n = next(counts) if span.end - span.start <= probe else max_tokens + 1
        if n <= max_tokens:
            sentences.append(span)
            own.append(n)
            continue
        pieces = _split_long(text, span, count_tokens, max_tokens)
        sentences.extend(pieces)
        own.extend(many([text[p.start : p.end] for p in pieces]))
    return sentences, own


def _pack(
    paragraphs: list[int],
    tokens: Callable[[int, int], int],
    first: int,
    last: int,
    max_tokens: int,
    overlap_sentences: int,
) -> list[tuple[int, int]]:
    """Sentences first..last as (first, last) ranges of chunks; ``tokens(a, b)``: sentences a..b together."""
    ranges: list[tuple[int, int]] = []
    if first > last:
        return ranges
    start = end = first
    current: int | None = None  # tokens(start, end), once known
    for k in range(first + 1, last + 1):
        new_paragraph = paragraphs[k] != paragraphs[end]
        if new_paragraph:
            if current is None:
                current = tokens(start, end)
            if current >= max_tokens // 2:
                ranges.append((start, end))
                start, end, current = k, k, None
                continue
        joined = tokens(start, k)
        if joined <= max_tokens:
            end, current = k, joined
            continue
        ranges.append((start, end))
        carry = max(start, end - overlap_sentences + 1) if overlap_sentences and not new_paragraph else end + 1
        carry_tokens = None
        while carry <= end:
            carry_tokens = tokens(carry, k)
            if carry_tokens <= max_tokens:
                break
            carry += 1
        # an overlap that would repeat the whole previous chunk adds nothing
        if start < carry <= end:
            start, end, current = carry, k, carry_tokens
        else:
            start, end, current = k, k, None
    ranges.append((start, end))
    return ranges
