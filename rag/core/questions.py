"""Reading a questions file: plain lines (one question each) or JSONL records with a "question" field."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.core.errors import InputError


def read_records(source: str | Path) -> Iterator[dict[str, Any]]:
    """One record per non-empty line: a JSON object with a "question" string, or {"question": line}.
    "-" reads standard input. A bad line is an InputError naming the file and line."""
    name = str(source)
    try:
        stream = sys.stdin if name == "-" else open(name, encoding="utf-8")  # noqa: SIM115
    except OSError as e:
        raise InputError(f"cannot read questions from {name}: {e}") from e
    try:
        for number, line in enumerate(stream, start=1):
            line = line.strip()
            if not line:
                continue
            if not line.startswith("{"):
                yield {"question": line}
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{name}:{number}: invalid JSON ({e.msg})") from e
            if not isinstance(record, dict) or not isinstance(record.get("question"), str):
                raise InputError(f'{name}:{number}: a JSON line needs a "question" string')
            yield record
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read questions from {name}: {e}") from e
    finally:
        if stream is not sys.stdin:
            stream.close()


def read_questions(source: str | Path) -> Iterator[str]:
    """Just the questions of ``source`` (see read_records)."""
    for record in read_records(source):
        yield record["question"]
