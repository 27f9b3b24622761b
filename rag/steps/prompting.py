"""Prompt templates from plain files in prompts/, rendered strictly: a missing or unexpected variable
is an error, never an empty string."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.core.errors import ConfigError
from rag.core.types import Hit

# template file -> the variables it must use, exactly
TEMPLATES: dict[str, frozenset[str]] = {
    "system.txt": frozenset(),
    "user.txt": frozenset({"history", "passages", "question", "language_name"}),
    "history.txt": frozenset({"turns"}),
    "decline.en.txt": frozenset(),
    "decline.id.txt": frozenset(),
}
LANGUAGE_NAMES = {"id": "Indonesian", "en": "English"}


def _variables(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@dataclass(frozen=True)
class Prompts:
    texts: dict[str, str]
    version: str  # sha256 over all template files: changes whenever a prompt changes

    def render(self, name: str, **values: str) -> str:
        template = self.texts[name]
        expected = TEMPLATES[name]
        given = set(values)
        if given != expected:
            missing, extra = sorted(expected - given), sorted(given - expected)
            raise ConfigError(f"prompt {name}: missing variables {missing}, unexpected variables {extra}")
        return template.format(**values) if expected else template

    def decline(self, language: str) -> str:
        return self.texts.get(f"decline.{language}.txt", self.texts["decline.en.txt"]).strip()


def load_prompts(folder: Path) -> Prompts:
    return Prompts(*read_templates(folder, TEMPLATES))


def read_templates(folder: Path, templates: dict[str, frozenset[str]]) -> tuple[dict[str, str], str]:
    """The text of each template file in ``folder`` (each must use exactly its variables) and a version:
    the first 12 hex digits of a sha256 over all of them, which changes whenever one does."""
    texts: dict[str, str] = {}
    digest = hashlib.sha256()
    for name, expected in sorted(templates.items()):
        path = folder / name
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"prompt template {path} is missing ({e}); prompts_dir={folder}") from e
        found = _variables(text)
        if found != set(expected):
            raise ConfigError(
                f"prompt template {path} uses variables {sorted(found)}, expected exactly {sorted(expected)}"
            )
        texts[name] = text
        digest.update(name.encode() + b"\0" + text.encode("utf-8") + b"\0")
    return texts, digest.hexdigest()[:12]


def format_passages(hits: Sequence[Hit]) -> str:
    """Passages numbered from 1 in the order shown; [n] in the answer refers to these numbers."""
    return "\n".join(f"[{i}] {' '.join(h.chunk.text.split())}" for i, h in enumerate(hits, start=1))


def fit_budget(hits: Sequence[Hit], count_tokens: Callable[[str], int], budget_tokens: int) -> tuple[Hit, ...]:
    """Passages in rank order while they fit ``budget_tokens`` of the model's own tokens (the first
    one always)."""
    shown: list[Hit] = []
    used = 0
    for hit in hits:
        cost = count_tokens(hit.chunk.text) + 4  # its "[n] " and newline
        if shown and used + cost > budget_tokens:
            break
        shown.append(hit)
        used += cost
    return tuple(shown)


def user_message(
    prompts: Prompts, question: str, language: str, shown: Sequence[Hit], recalled: Sequence[tuple[str, str]]
) -> str:
    """The user turn: the recalled exchanges (``conversation.recalled_turns``), the numbered passages
    and the question."""
    turns = "\n".join(f"Q: {q}\nA: {a}" for q, a in recalled)
    return prompts.render(
        "user.txt",
        history=prompts.render("history.txt", turns=turns) if turns else "",
        passages=format_passages(shown),
        question=question,
        language_name=LANGUAGE_NAMES.get(language, "English"),
    )
