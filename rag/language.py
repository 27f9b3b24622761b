"""Tell Indonesian from English questions, by function words (good enough for short questions)."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-zA-Z]+")
_INDONESIAN = frozenset(
    "yang dan di ke dari apa siapa kapan berapa mengapa kenapa bagaimana apakah dimana mana dengan untuk "
    "ini itu tidak bukan adalah oleh dalam pada atau juga akan telah sudah belum saja tentang menurut "
    "para sebagai karena tersebut mereka dia ia kami kita saya anda bisa dapat ada seperti antara bagi "
    "lalu kemudian jika kalau serta hal tahun bulan hari negara presiden menteri kata sebut siapakah "
    "apa-apa berapakah bagaimanakah mengapakah jelaskan sebutkan".split()
)
_ENGLISH = frozenset(
    "the a an and or of to in on at by for with from what who whom whose when where why how which is are "
    "was were be been did does do has have had will would can could should about did this that these those "
    "it its he she they them their his her according tell explain list name many much".split()
)


def detect_language(text: str, fallback: str = "en") -> str:
    """"id" or "en"; ``fallback`` when the text gives no evidence either way."""
    words = [w.lower() for w in _WORD.findall(text)]
    id_score = sum(w in _INDONESIAN for w in words)
    en_score = sum(w in _ENGLISH for w in words)
    if id_score > en_score:
        return "id"
    if en_score > id_score:
        return "en"
    return fallback
