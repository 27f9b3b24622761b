"""A serving process's long-lived objects, kept out of the garbage collector's full passes.

Python's cyclic collector pauses every thread while a full pass walks all tracked objects. A loaded
server holds some 300,000 of them (models, index, page) that never become garbage, so a full pass
took about 0.2-0.3 s here, and one came whenever enough new objects had accumulated: in the load
benchmark, in the middle of the first burst of questions. ``settle()`` collects once and then freezes
what is alive (``gc.freeze``): later passes walk only what was made since. Call it when the process has
loaded what it serves, and again after it swaps in a new index generation, so that the previous one's
cycles are collected rather than kept frozen.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass

_lock = threading.Lock()


@dataclass(frozen=True)
class Settled:
    frozen: int  # objects kept out of later full passes
    collected: int  # unreachable objects the settling pass freed
    took_ms: float


def settle() -> Settled:
    """Unfreeze, collect everything unreachable, freeze the rest."""
    with _lock:
        started = time.perf_counter()
        gc.unfreeze()
        collected = gc.collect()
        gc.freeze()
        return Settled(gc.get_freeze_count(), collected, (time.perf_counter() - started) * 1000)
