"""Re-check a run's recorded replies with today's answer checks: `rag eval --answers --replay REPORT`.

A live answer run does not repeat exactly (llama-server decodes its slots together and batched
arithmetic rounds differently), so two builds answered live differ by a few answers that have nothing
to do with their checks. Replaying measures a change to the gate, grounding and answer checks alone:
each question is prepared again (retrieval, gate, passages) and the reply the model wrote in the
recorded run is checked by the current code, without calling the model. A question the recorded run
declined before calling the model has no reply: when today's gate passes it, the model answers it and
it is counted as generated. Timings of replayed answers are not answer times.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rag.core.errors import InputError
from rag.core.types import Answer
from rag.steps.answer.answerer import GATE_DECLINE, Answerer


@dataclass(frozen=True)
class Recorded:
    path: Path
    prompt_version: str
    replies: Mapping[str, str]  # question -> the model's reply, for the questions the model answered


@dataclass
class ReplayCounts:
    replayed: int = 0  # recorded reply checked again
    generated: int = 0  # no recorded reply and today's gate passes: the model answered
    gated: int = 0  # declined by today's gate, no reply needed
    generated_questions: list[str] = field(default_factory=list)


def read_recorded(path: Path) -> Recorded:
    """The replies of our chain in a report.json written by `rag eval --answers`."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        rows = report["answers"]["rows"]
        version = str(report["prompt_version"])
        replies = {
            str(r["question"]): str(r["raw"]) for r in rows if not str(r["decline_reason"]).startswith(GATE_DECLINE)
        }
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(
            f"{path}: not a report of an answer run (`rag eval --answers`): {type(e).__name__}: {e}"
        ) from e
    return Recorded(path, version, replies)


def replaying(answerer: Answerer, recorded: Recorded, counts: ReplayCounts) -> Callable[[str], Answer]:
    """An answer function that checks the recorded reply to each question instead of asking the model."""
    if answerer.prompts.version != recorded.prompt_version:
        raise InputError(
            f"{recorded.path} was answered with prompt version {recorded.prompt_version}, today's prompts are "
            f"{answerer.prompts.version}: its replies answer other prompts, so replaying them measures nothing"
        )

    def answer(question: str) -> Answer:
        prepared = answerer.prepare(question)
        reply = recorded.replies.get(question)
        if not prepared.gate.passed:
            counts.gated += 1
        elif reply is None:
            counts.generated += 1
            counts.generated_questions.append(question)
        else:
            counts.replayed += 1
            return answerer.finalize(prepared, reply)
        return answerer.answer_prepared(prepared)

    return answer
