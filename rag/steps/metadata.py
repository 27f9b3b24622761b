"""An article's own metadata, read from its conventions: who wrote it, where it was filed, where it was
published, who took the photo.

Each field is the exact span of the line that states it (``doc.text[start:end] == text``), so a question
about the article ("Who wrote ...?", "Dari kota mana ... dilaporkan?") can be answered from that line and
cite it like any passage. Conventions read (Indonesian and English news): byline lines ("Oleh X",
"Penulis: X", "By X", "Reporter: X"), author notes at the end ("X adalah peneliti senior di ...",
"X is a senior fellow at ..."), contact lines ("Hubungi penulis di ..."), datelines opening the text
("PARIS –", "MOSKOW, 12/5 -", "JAKARTA (Antara) -"), copyright and publication lines ("Hak cipta milik X",
"© X", "posisi The Moscow Times") and photo credits ("Foto: X"). Fields found nowhere are absent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from rag.core.text import WORD
from rag.core.types import Document


class Field(StrEnum):
    AUTHOR = "author"  # the line naming who wrote the article (byline or author note)
    DATELINE = "dateline"  # the place (and date) the article was filed from
    PUBLISHER = "publisher"  # the outlet or copyright holder
    PHOTO = "photo"  # the photo credit
    DATE = "date"  # when the article was published (a date line, or the date in its dateline)


@dataclass(frozen=True)
class Span:
    """A field's evidence: ``text == doc.text[start:end]``; ``value`` is the part that answers."""

    field: Field
    value: str
    start: int
    end: int
    text: str


_NAME = r"[A-Z][\w'.\-]+(?:\s+(?:[A-Z][\w'.\-]+|bin|binti|van|de|al-\w+)){0,4}"
_BYLINE = re.compile(rf"^\s*(?:Oleh|Penulis|Pewarta|Reporter|Wartawan|Editor|By|Written by|Author)\s*:?\s+({_NAME})")
# "Mark Galeotti adalah peneliti senior di ..." / "Jane Doe is a senior fellow at ..."
_AUTHOR_NOTE = re.compile(
    rf"^\s*({_NAME})\s+(?:adalah|merupakan|ialah|is|was)\s+(?:an?\s+|the\s+|seorang\s+)?"
    r"(?:\w+\s+){0,3}(?:peneliti|penulis|wartawan|jurnalis|koresponden|editor|redaktur|kolumnis|analis|"
    r"dosen|profesor|guru besar|direktur|pendiri|researcher|fellow|writer|journalist|correspondent|editor|"
    r"columnist|analyst|professor|lecturer|director|founder|author)\b"
)
_CONTACT = re.compile(r"^\s*(?:Hubungi penulis|Contact the authors?|Ikuti penulis|Follow the authors?)\b", re.I)
# "PARIS –", "MOSKOW, 12/5 -", "JAKARTA (Antara) -" opening the text; the place is in capitals
_DATELINE = re.compile(r"^\s*([A-Z][A-Z .'\-]{2,40}?)(?:\s*,\s*([\w /.\-]{1,20}?))?(?:\s*\(([^)]{1,40})\))?\s*[–—-]\s+")
_PUBLISHER = re.compile(
    r"(?:Hak cipta(?: milik)?|Copyright(?: ©)?|©)\s+(?:\d{4}\s+)?(" + _NAME + r")"
    r"|(?:mencerminkan posisi|reflect the position of|posisi)\s+(" + _NAME + r")",
)
_PHOTO = re.compile(rf"(?:Foto|Photo|Photograph)\s*:\s*({_NAME}(?:/[\w .\-]+)?)")
_TAIL_LINES = 6  # author notes and copyright lines sit at the end of an article
_MONTH = (
    r"(?:Januari|Februari|Maret|April|Mei|Juni|Juli|Agustus|September|Oktober|November|Desember|January|February|"
    r"March|May|June|July|August|October|December|Jan|Feb|Mar|Apr|Jun|Jul|Agu|Aug|Sep|Okt|Oct|Nov|Des|Dec)\.?"
)
_WEEKDAY = (
    r"(?:Senin|Selasa|Rabu|Kamis|Jumat|Jum'at|Sabtu|Minggu|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
)
_DATE = (
    rf"(?:\d{{1,2}}\s+{_MONTH}\s+\d{{4}}|{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}|"
    r"\d{4}-\d{2}-\d{2})"
)
_CLOCK = r"(?:\s*[,|]?\s*(?:pukul\s+)?\d{1,2}[:.]\d{2}(?:\s*(?:WIB|WITA|WIT|GMT|UTC))?)?"
# "Diterbitkan: Senin, 14 Oktober 2014 10:00 WIB", "Published on May 23, 2017", or a line that is a date alone
_DATE_LINE = re.compile(
    r"^\s*(?:(?:Diterbitkan|Dipublikasikan|Dimuat|Terbit|Tayang|Published|Posted|First published)"
    r"(?:\s+(?:on|pada))?\s*:?\s*)?"
    rf"((?:{_WEEKDAY},?\s+)?{_DATE}){_CLOCK}\s*$"
)
# the date part of a dateline ("MOSKOW, 12/5 -"): day/month, or a whole date
_DATELINE_DATE = re.compile(rf"^(?:\d{{1,2}}/\d{{1,2}}|{_DATE})$")


def extract_metadata(text: str) -> dict[Field, Span]:
    """The fields an article states about itself, each with its exact span (the first found wins)."""
    found: dict[Field, Span] = {}
    lines = _lines(text)
    if lines:
        start, end = lines[0]
        match = _DATELINE.match(text[start:end])
        if match and _looks_like_place(match.group(1)):
            found[Field.DATELINE] = _span(Field.DATELINE, match.group(1).strip().title(), text, start, end)
            date = (match.group(2) or "").strip()
            if _DATELINE_DATE.match(date):
                found[Field.DATE] = _span(Field.DATE, date, text, start, end)
    for start, end in lines[:3] + lines[-_TAIL_LINES:]:
        line = text[start:end]
        for kind, pattern in ((Field.AUTHOR, _BYLINE), (Field.AUTHOR, _AUTHOR_NOTE)):
            match = pattern.match(line)
            if match and kind not in found:
                found[kind] = _span(kind, match.group(1).strip(), text, start, end)
        if Field.AUTHOR not in found and _CONTACT.match(line):
            found[Field.AUTHOR] = _span(Field.AUTHOR, "", text, start, end)
        match = _DATE_LINE.match(line)
        if match and Field.DATE not in found:
            found[Field.DATE] = _span(Field.DATE, match.group(1).strip(), text, start, end)
        match = _PUBLISHER.search(line)
        if match and Field.PUBLISHER not in found:
            value = (match.group(1) or match.group(2) or "").strip()
            found[Field.PUBLISHER] = _span(Field.PUBLISHER, value.rstrip("."), text, start, end)
    for start, end in lines:
        match = _PHOTO.search(text[start:end])
        if match:
            found.setdefault(Field.PHOTO, _span(Field.PHOTO, match.group(1).strip(), text, start, end))
            break
    return found


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every non-blank line, without its surrounding spaces."""
    out = []
    for match in re.finditer(r"[^\n]+", text):
        line = match.group(0)
        stripped = line.strip()
        if stripped:
            start = match.start() + (len(line) - len(line.lstrip()))
            out.append((start, start + len(stripped)))
    return out


def _looks_like_place(candidate: str) -> bool:
    words = WORD.findall(candidate)
    return 1 <= len(words) <= 4 and all(w.isupper() for w in words)


def _span(field: Field, value: str, text: str, start: int, end: int) -> Span:
    return Span(field, value, start, end, text[start:end])


# --- which field a question asks for -------------------------------------------------------------------
_ASKS = {
    Field.AUTHOR: re.compile(
        r"\b(?:penulis|pengarang|ditulis oleh|menulis|wrote|writer|author|authored|byline|columnist)\b", re.I
    ),
    Field.DATELINE: re.compile(
        r"\b(?:dateline|datelined|dilaporkan dari|dari kota mana|filed from|reported from|which city was)\b", re.I
    ),
    Field.PUBLISHER: re.compile(
        r"\b(?:hak cipta|copyright|diterbitkan oleh|dimuat (?:di|oleh)|penerbit|publisher|published by|"
        r"which (?:newspaper|outlet|publication)|media (?:apa|mana))\b",
        re.I,
    ),
    Field.PHOTO: re.compile(r"\b(?:foto|photo|photograph|fotografer|photographer)\b", re.I),
    Field.DATE: re.compile(  # about the article itself, not a report or a treaty it mentions
        r"(?=.*\b(?:artikel|berita|opini|tulisan|kolom|esai|article|piece|story|op-ed|opinion|column|essay)\b)"
        r"(?:\b(?:kapan|tanggal berapa|pada tanggal|when|what date|on what day|which day)\b[^?]*"
        r"\b(?:diterbitkan|dimuat|terbit|dipublikasikan|diunggah|ditayangkan|published|posted)\b"
        r"|\b(?:tanggal (?:terbit|publikasi|penerbitan|pemuatan)|publication date|date of publication)\b)",
        re.I,
    ),
}


def asked_fields(question: str) -> tuple[Field, ...]:
    """The metadata fields ``question`` asks about (usually none)."""
    return tuple(field for field, pattern in _ASKS.items() if pattern.search(question))


@dataclass
class Articles:
    """The indexed articles by id: their text, and their metadata read once and kept."""

    documents: Mapping[str, Document]
    _metadata: dict[str, dict[Field, Span]] = field(default_factory=dict)

    def text(self, doc_id: str) -> str:
        doc = self.documents.get(doc_id)
        return doc.text if doc else ""

    def metadata(self, doc_id: str) -> Mapping[Field, Span]:
        """What ingest stored in doc.metadata["article"]; read from the text for an older index."""
        if doc_id not in self._metadata:
            doc = self.documents.get(doc_id)
            stored = doc.metadata.get("article") if doc else None
            if doc is not None and isinstance(stored, dict):
                self._metadata[doc_id] = {
                    Field(name): Span(Field(name), s["value"], s["start"], s["end"], doc.text[s["start"] : s["end"]])
                    for name, s in stored.items()
                    if name in Field.__members__.values()
                }
            else:
                self._metadata[doc_id] = extract_metadata(self.text(doc_id))
        return self._metadata[doc_id]
