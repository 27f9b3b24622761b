"""One answer, run in a worker thread so that the page can show where it stands and stop it.

The worker drives ``Answerer.stream``: the evidence comes at once; a question the evidence gate
passes then joins the pipeline's generation queue with the key of its messages (the queued chat
model claims that place when generation starts) and generates. The page reads the events from a
queue, so while nothing arrives it can still report the question's place in the line, and a Stop (or
a closed tab) reaches the worker within one token or one poll: it leaves the line, or closes the
stream, which closes the chat model's stream and frees the slot.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import cast

from rag.steps.answer.answerer import Answerer, Event, EventKind
from rag.steps.conversation import HistoryTurns
from rag.steps.generation_queue import GenerationQueue, Ticket, request_key
from ui.waiting import Wait, wait_of

log = logging.getLogger(__name__)

POLL_S = 0.25  # how often the page hears from a waiting question


@dataclass(frozen=True)
class Waiting:
    """No event yet; ``wait`` is the question's place in the line (None while retrieving)."""

    wait: Wait | None


class _Done:
    pass


_DONE = _Done()


class AnswerRun:
    """``for item in run.items():`` yields Events (EVIDENCE, TOKENs, ANSWER) and Waiting updates;
    it re-raises the chain's errors. ``stop()`` ends it early; call it when the reader leaves."""

    def __init__(self, answerer: Answerer, question: str, history: HistoryTurns, generation: GenerationQueue) -> None:
        self.answerer = answerer
        self.question = question
        self.history = tuple(history)
        self.generation = generation
        self.started = time.perf_counter()
        self.evidence_ms: float | None = None  # from start to the EVIDENCE event
        self._events: queue.Queue[Event | BaseException | _Done] = queue.Queue()
        self._stop = threading.Event()
        self._ticket: Ticket | None = None
        self._thread = threading.Thread(target=self._work, name="answer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def items(self) -> Generator[Event | Waiting, None, None]:
        try:
            last: Wait | None = None
            while True:
                try:
                    item = self._events.get(timeout=POLL_S)
                except queue.Empty:
                    wait = wait_of(self.generation, self._ticket)
                    if wait != last:
                        last = wait
                        yield Waiting(wait)
                    continue
                if isinstance(item, _Done):
                    return
                if isinstance(item, BaseException):
                    raise item
                if item.kind == EventKind.EVIDENCE:
                    self.evidence_ms = (time.perf_counter() - self.started) * 1000
                yield item
        finally:
            self.stop()  # the reader left (finished, stopped, or the tab closed): the worker ends too

    def _work(self) -> None:
        stream = cast(Generator[Event, None, None], self.answerer.stream(self.question, history=self.history))
        ticket = None
        try:
            evidence = next(stream)
            self._events.put(evidence)
            prepared = evidence.prepared
            if prepared is not None and prepared.gate.passed:  # a decline needs no model: no turn to wait for
                ticket = self._ticket = self.generation.enter(request_key(prepared.messages))
                while not ticket.wait(POLL_S):
                    if self._stop.is_set():
                        return
            for event in stream:
                if self._stop.is_set():
                    return
                self._events.put(event)
        except BaseException as e:  # noqa: BLE001 - handed to the reader, who re-raises it
            self._events.put(e)
        finally:
            stream.close()  # closes the chat model's stream: generation really stops
            if ticket is not None:
                ticket.release()  # leaves the line, or (safe twice) the slot the chat model held
            self._ticket = None
            self._events.put(_DONE)
