"""The visible text and title of an HTML page, by a small tag scanner that is linear on any input
(html.parser is quadratic on some malformed pages)."""

from __future__ import annotations

import html
import re

from rag.core.unicode_text import clean_line


class _HTMLText:
    """Visible text of a page: a small tag scanner, linear on any input (html.parser is quadratic on
    some malformed pages). Text in script/style/head/... is dropped; block tags become line breaks."""

    _BLOCK = frozenset(
        {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article", "header"}
        | {"footer", "blockquote", "pre", "ul", "ol", "table", "title"}
    )
    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    _RAW_TEXT = {name: re.compile(rf"</{name}", re.IGNORECASE) for name in ("script", "style")}
    _TAG_NAME = re.compile(r"(/?)([a-zA-Z][^\t\n\r\f />\x00]*)")
    _TAG_STOP = re.compile(r"[>=]")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self._skip_depth = 0
        self._in_title = False
        self._in_h1 = False

    def feed(self, raw: str) -> None:
        """Every scan moves forward, and a construct left open at the end of the page ends the page."""
        pos, n = 0, len(raw)
        while pos < n:
            lt = raw.find("<", pos)
            if lt < 0:
                self.data(raw[pos:])
                return
            if lt > pos:
                self.data(raw[pos:lt])
            if raw.startswith("<!--", lt):
                close = raw.find("-->", lt + 4)
                pos = n if close < 0 else close + 3
                continue
            m = self._TAG_NAME.match(raw, lt + 1)
            if m is None:
                if raw.startswith(("<!", "<?"), lt):  # doctype, CDATA, processing instruction
                    close = raw.find(">", lt + 2)
                    pos = n if close < 0 else close + 1
                else:
                    self.data("<")
                    pos = lt + 1
                continue
            close = self._tag_end(raw, m.end())
            if close < 0:
                return
            name = m.group(2).lower()
            pos = close + 1
            if m.group(1):
                self.end(name)
                continue
            self.start(name)
            if raw[close - 1] == "/":
                self.end(name)
            elif name in self._RAW_TEXT:
                found = self._RAW_TEXT[name].search(raw, pos)
                pos = n if found is None else found.start()

    def _tag_end(self, raw: str, pos: int) -> int:
        """Position of the ">" that ends a tag (a quoted attribute value may hold one); -1 when none."""
        while True:
            m = self._TAG_STOP.search(raw, pos)
            if m is None:
                return -1
            if m.group() == ">":
                return m.start()
            pos = m.end()
            while pos < len(raw) and raw[pos] in " \t\n\r\f":
                pos += 1
            if pos < len(raw) and raw[pos] in "\"'":
                close = raw.find(raw[pos], pos + 1)
                if close < 0:
                    return -1
                pos = close + 1

    def start(self, tag: str) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip_depth += 1
        if tag == "h1":
            self._in_h1 = True
        if tag in self._BLOCK:
            self.parts.append("\n")

    def end(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP and self._skip_depth:
            self._skip_depth -= 1
        if tag == "h1":
            self._in_h1 = False
        if tag in self._BLOCK:
            self.parts.append("\n")

    def data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
        elif not self._skip_depth:
            self.parts.append(data)
            if self._in_h1:
                self.h1_parts.append(data)


# A numeric character reference too long for int() (Python refuses > 4300 digits): beyond U+10FFFF anyway.
_LONG_CHARREF = re.compile(r"&#(?:([xX])([0-9a-fA-F]{7,})|([0-9]{8,}))(;?)")


def _unescape(text: str) -> str:
    def shorten(m: re.Match[str]) -> str:
        x, digits = (m.group(1), m.group(2)) if m.group(1) else ("", m.group(3))
        value = digits.lstrip("0") or "0"
        if len(value) > (6 if x else 7):
            return "\ufffd"
        return f"&#{x}{value}{m.group(4)}"

    return html.unescape(_LONG_CHARREF.sub(shorten, text)) if "&" in text else text


def html_to_text(raw: str) -> tuple[str, str]:
    """Visible text of an HTML page (not yet normalised) and its title (from <title> or the first <h1>)."""
    page = _HTMLText()
    page.feed(raw)
    title = clean_line(_unescape("".join(page.title_parts))) or clean_line(_unescape("".join(page.h1_parts)))
    return _unescape("".join(page.parts)), title
