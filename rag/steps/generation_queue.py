"""The bounded pool that generation runs on: at most ``slots`` answers are generated at once, the
others wait in arrival order, and anyone can ask how long the line is and how long a place in it
will wait.

Retrieval never enters this queue: a question is retrieved and its evidence shown while earlier
questions are still being generated; only the call to the language model waits here.

Two ways in:
- ``slot(key)``: blocks until a slot is free and holds it for the ``with`` block (the chat model does
  this around every generation, so every caller is bounded).
- ``enter(key)``: joins the line without blocking and returns a Ticket, so a caller (the chat page) can
  show its place while it waits (``ticket.wait(0.5)`` in a loop). Once granted, the slot is kept for
  the generation whose ``slot(key)`` comes with the same key (``request_key(messages)``), from any
  thread; a granted slot that nobody claims within ``claim_timeout_s`` is given back.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import statistics
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# service time assumed before any generation has finished (first token + answer, 2 cores)
DEFAULT_SERVICE_S = 6.0
_HISTORY = 32  # the last service times the estimate is the median of


def request_key(messages: Sequence[Any]) -> str:
    """The key of one generation request: a digest of its messages' text (LangChain messages, or
    plain strings). The chat page and the chat model compute it from the same messages."""
    digest = hashlib.sha1()
    for m in messages:
        digest.update(str(getattr(m, "content", m)).encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class QueueSnapshot:
    """The queue at one moment."""

    slots: int  # generations that can run at once
    running: int  # generations holding a slot now
    waiting: int  # requests waiting for a slot
    service_s: float  # median seconds a generation held its slot (recent ones; a default before any)
    wait_s: float  # estimated seconds a request arriving now waits before its generation starts

    @property
    def length(self) -> int:
        """Waiting plus running."""
        return self.running + self.waiting

    def to_json(self) -> dict[str, Any]:
        return {
            "slots": self.slots,
            "running": self.running,
            "waiting": self.waiting,
            "length": self.length,
            "service_s": round(self.service_s, 2),
            "wait_s": round(self.wait_s, 2),
        }


class Ticket:
    """One place in the line. ``position()`` is 0 once it holds a slot, else 1 for the first waiting."""

    def __init__(self, queue: GenerationQueue, key: str, serial: int) -> None:
        self._queue = queue
        self.key = key
        self.serial = serial
        self.entered = time.monotonic()
        self.granted_at: float | None = None
        self.claimed = False
        self.done = False

    @property
    def granted(self) -> bool:
        return self.granted_at is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` seconds (None: until granted); True once this ticket holds a slot."""
        return self._queue._wait(self, timeout)

    def position(self) -> int:
        return self._queue._position(self)

    def estimate_s(self) -> float:
        """Estimated seconds until this ticket's generation starts (0 once it holds a slot)."""
        return self._queue._estimate(self)

    def release(self) -> None:
        """Leave the line, or give the slot back; safe to call twice."""
        self._queue._release(self)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class GenerationQueue:
    """A FIFO semaphore of ``slots`` with a view of its length and an estimate of the wait."""

    def __init__(self, slots: int, *, claim_timeout_s: float = 30.0, default_service_s: float = DEFAULT_SERVICE_S):
        if slots < 1:
            raise ValueError(f"slots={slots} must be at least 1")
        self.slots = slots
        self.claim_timeout_s = claim_timeout_s
        self._default_service_s = default_service_s
        self._cond = threading.Condition()
        self._waiting: deque[Ticket] = deque()
        self._running: list[Ticket] = []
        self._service: deque[float] = deque(maxlen=_HISTORY)
        self._serial = itertools.count(1)

    # -- the two ways in -------------------------------------------------------------------------
    def enter(self, key: str = "") -> Ticket:
        """Join the line now, without blocking."""
        with self._cond:
            ticket = Ticket(self, key, next(self._serial))
            self._waiting.append(ticket)
            self._grant()
            return ticket

    @contextmanager
    def slot(self, key: str = "") -> Iterator[Ticket]:
        """Hold a slot for the ``with`` block: the granted, unclaimed ticket entered with ``key``, if
        there is one, else a new place at the end of the line (blocks until its turn)."""
        with self._cond:
            ticket = self._claimable(key) if key else None
            if ticket is None:
                ticket = Ticket(self, key, next(self._serial))
                self._waiting.append(ticket)
                self._grant()
            ticket.claimed = True
        try:
            ticket.wait()
            yield ticket
        finally:
            ticket.release()

    # -- what the page shows ---------------------------------------------------------------------
    def snapshot(self) -> QueueSnapshot:
        with self._cond:
            self._expire_unclaimed()
            return QueueSnapshot(
                slots=self.slots,
                running=len(self._running),
                waiting=len(self._waiting),
                service_s=self._service_s(),
                wait_s=self._start_after(len(self._waiting) + 1),
            )

    def position(self, key: str) -> int | None:
        """The place of the earliest ticket with ``key``: 0 while it holds a slot, n when n-th in
        line; None when no ticket has that key (never entered, or finished)."""
        with self._cond:
            for t in self._running:
                if t.key == key:
                    return 0
            for i, t in enumerate(self._waiting, start=1):
                if t.key == key:
                    return i
            return None

    # -- internals (all under self._cond) --------------------------------------------------------
    def _claimable(self, key: str) -> Ticket | None:
        for t in itertools.chain(self._running, self._waiting):
            if t.key == key and not t.claimed and not t.done:
                return t
        return None

    def _grant(self) -> None:
        self._expire_unclaimed()
        while self._waiting and len(self._running) < self.slots:
            ticket = self._waiting.popleft()
            ticket.granted_at = time.monotonic()
            self._running.append(ticket)
        self._cond.notify_all()

    def _expire_unclaimed(self) -> None:
        now = time.monotonic()
        for t in list(self._running):
            if not t.claimed and t.granted_at is not None and now - t.granted_at > self.claim_timeout_s:
                self._finish(t, record=False)

    def _finish(self, ticket: Ticket, *, record: bool) -> None:
        if ticket.done:
            return
        ticket.done = True
        if ticket in self._running:
            self._running.remove(ticket)
            if record and ticket.granted_at is not None:
                self._service.append(time.monotonic() - ticket.granted_at)
        elif ticket in self._waiting:
            self._waiting.remove(ticket)

    def _release(self, ticket: Ticket) -> None:
        with self._cond:
            self._finish(ticket, record=ticket.claimed)
            self._grant()

    def _wait(self, ticket: Ticket, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not ticket.granted:
                if ticket.done:
                    raise RuntimeError("this ticket was released before it was granted a slot")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def _position(self, ticket: Ticket) -> int:
        with self._cond:
            if ticket.granted:
                return 0
            try:
                return self._waiting.index(ticket) + 1
            except ValueError:
                return 0

    def _estimate(self, ticket: Ticket) -> float:
        with self._cond:
            if ticket.granted or ticket.done:
                return 0.0
            return self._start_after(self._waiting.index(ticket) + 1)

    def _service_s(self) -> float:
        return statistics.median(self._service) if self._service else self._default_service_s

    def _start_after(self, place: int) -> float:
        """Seconds until the ``place``-th waiting request starts: each slot frees when its running
        generation has used the median service time, then serves the line in order."""
        service = self._service_s()
        now = time.monotonic()
        free_at = [max(0.0, service - (now - (t.granted_at or now))) for t in self._running]
        free_at += [0.0] * (self.slots - len(free_at))
        heapq.heapify(free_at)
        start = 0.0
        for _ in range(place):
            start = heapq.heappop(free_at)
            heapq.heappush(free_at, start + service)
        return start
