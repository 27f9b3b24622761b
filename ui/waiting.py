"""Where a question stands in the line for the language model.

The line is the pipeline's generation queue (rag/steps/generation_queue.py): retrieval never waits
in it, only generation does. The page joins it for a question as soon as its evidence is shown
(``enter`` with the key of the question's messages, which the queued chat model then claims), so it
can say where the question stands while it waits. ``wait_of`` is the one place the page reads that.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.steps.generation_queue import GenerationQueue, Ticket


@dataclass(frozen=True)
class Wait:
    """Where one question stands: ``ahead`` questions generate or wait before it. Held as the page
    shows it (whole seconds), so a waiting question is sent a new update only when what its reader
    sees changes, not at every poll while its estimate counts down."""

    ahead: int
    estimate_s: int  # until its generation starts (the queue's estimate from recent answers), at least 1


def wait_of(queue: GenerationQueue, ticket: Ticket | None) -> Wait | None:
    """The question's place and estimated wait; None once it generates (or has left the line)."""
    if ticket is None or ticket.granted or ticket.done:
        return None
    place = ticket.position()  # 1 for the first waiting
    if place == 0:
        return None
    return Wait(ahead=queue.snapshot().running + place - 1, estimate_s=max(1, round(ticket.estimate_s())))
