"""Many readers at once: the real chat server under ``clients`` concurrent chat clients.

For each engine configuration (by default the in-process model, one answer at a time, and the
managed llama-server with ``llm_parallel`` slots), side by side in one run:
- `rag serve` starts in a subprocess on a free loopback port; one question warms it up (model loaded,
  llama-server started, the system prompt read);
- ``clients`` gradio_client clients call the /chat endpoint, each asking the next question of
  eval/questions.jsonl as soon as its previous answer is complete, until ``seconds`` have passed since
  they started (answers in flight then finish);
- figures: answers and throughput (answers per minute of wall time, drain included), time from
  submission to the first update that carries the retrieved passages ("evidence") and to the
  complete answer (p50, p90, max), errors, and the resident memory of the server's process tree
  (the product and, when managed, llama-server), sampled every second; the CPU time the server's
  process tree and the clients (this process, on the same cores) used while the clients asked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core.stats import latency_stats, percentile
from rag.pipeline import SENTENCES_KEPT_LOG
from rag.settings import REPO_ROOT, Settings
from rag.tools.benchmarks.answer import COLD_QUESTION, free_port, settings_args, wait_listening
from rag.tools.benchmarks.common import questions_from, write_json

# engine name -> the settings `rag serve` gets for it (as RAG_* variables)
ENGINES: dict[str, dict[str, str]] = {
    "in-process": {"RAG_LLM_SERVER": "in-process", "RAG_LLM_PARALLEL": "1"},
    "managed": {"RAG_LLM_SERVER": "managed"},
}
POLL_S = 0.02  # how often a client looks for a new update from the server
# the server is plain http on loopback, so no certificate is ever checked; with checking on, gradio_client
# builds a new TLS context (reading the CA bundle) for every request: measured, that took about half of
# the time to evidence of 20 simultaneous questions, on the same two cores as the server
LOOPBACK_SSL_VERIFY = False
READY_TIMEOUT_S = 300


@dataclass
class Record:
    client: int
    question: str
    submitted: float  # perf_counter()
    evidence_s: float | None = None  # submission -> first update carrying the passages
    total_s: float | None = None  # submission -> complete answer
    error: str = ""
    turn: int = 0  # 0: the client's first question (its session is new to the server)


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    found, pending = [], [pid]
    while pending:
        p = pending.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        found.append(p)
    return found


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB."""
    total = 0.0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def tree_cpu_s(pid: int) -> float:
    """CPU time (user + system) used so far by ``pid`` and its living descendants, in seconds."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def _client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False, ssl_verify=LOOPBACK_SSL_VERIFY)


def ask_one(client: Any, question: str, record: Record) -> None:
    """One question through /chat; fills ``record`` (times, or the error)."""
    job = client.submit(question, [], api_name="/chat")
    while not job.done():
        if record.evidence_s is None and _carries_evidence(job.outputs()):
            record.evidence_s = time.perf_counter() - record.submitted
        time.sleep(POLL_S)
    try:
        _, messages, cards = job.result()
    except Exception as e:  # recorded and counted, never swallowed
        record.error = f"{type(e).__name__}: {e}"[:300]
        return
    record.total_s = time.perf_counter() - record.submitted
    if record.evidence_s is None:  # the whole answer came in one update
        record.evidence_s = record.total_s
    if not messages or not str(messages[-1].get("content", "")).strip() or not cards:
        record.error = "incomplete answer: no message or no passages in the last update"


def _carries_evidence(outputs: list[Any]) -> bool:
    return any(isinstance(o, (tuple, list)) and len(o) == 3 and o[2] for o in outputs)


def drive(url: str, questions: list[str], clients: int, seconds: float) -> tuple[list[Record], float]:
    """``clients`` threads asking questions for ``seconds``; returns the records and the wall time
    (from the common start to the last answer)."""
    records: list[Record] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    start: list[float] = []

    def client_loop(i: int) -> None:
        client = _client(url)
        ready.wait()
        turn = 0
        while time.perf_counter() - start[0] < seconds:
            record = Record(i, questions[(i + turn * clients) % len(questions)], time.perf_counter(), turn=turn)
            ask_one(client, record.question, record)
            with lock:
                records.append(record)
            turn += 1

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    start.append(time.perf_counter())
    ready.wait()
    start[0] = time.perf_counter()
    for t in threads:
        t.join(timeout=seconds + 900)
    return records, time.perf_counter() - start[0]


def run_engine(
    settings: Settings, engine: str, questions: list[str], *, clients: int, seconds: float
) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **ENGINES[engine]}
    if engine == "managed":
        env["RAG_LLM_PARALLEL"] = str(settings.llm_parallel)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag", "serve", "--no-ingest", "--port", str(port), *settings_args(settings)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    peak = [0.0]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(1.0):
            peak[0] = max(peak[0], tree_rss_mb(proc.pid))

    try:
        started = time.perf_counter()
        wait_listening(proc, port)
        ready = _watch_stderr(proc)
        url = f"http://127.0.0.1:{port}/"
        warm = Record(-1, COLD_QUESTION, time.perf_counter())
        ask_one(_client(url), COLD_QUESTION, warm)
        if warm.error:
            raise RuntimeError(f"the warm-up question failed on {engine}: {warm.error}")
        warm_s = time.perf_counter() - started
        # as a server that has been up a while: its passages' sentence vectors computed (seconds, at a
        # low priority, which the clients' own start-up would otherwise starve into the measured minute)
        if not ready.wait(READY_TIMEOUT_S):
            raise RuntimeError(f"rag serve ({engine}) did not say '{SENTENCES_KEPT_LOG}' within {READY_TIMEOUT_S} s")
        rss_before = tree_rss_mb(proc.pid)
        cpu_before = tree_cpu_s(proc.pid), _own_cpu_s()
        threading.Thread(target=sample, daemon=True).start()
        records, wall_s = drive(url, questions, clients, seconds)
        rss_after = tree_rss_mb(proc.pid)
        cpu = tree_cpu_s(proc.pid) - cpu_before[0], _own_cpu_s() - cpu_before[1]
    finally:
        sampling.set()
        _stop(proc)
    done = [r for r in records if not r.error]
    errors = [r.error for r in records if r.error]
    return {
        "engine": engine,
        "slots": 1 if engine == "in-process" else settings.llm_parallel,
        "clients": clients,
        "seconds": seconds,
        "start_to_first_answer_s": round(warm_s, 1),
        "answers": len(done),
        "errors": len(errors),
        "error_examples": errors[:5],
        "wall_s": round(wall_s, 1),
        "answers_per_minute": round(60 * len(done) / wall_s, 1) if wall_s else 0.0,
        "evidence": _evidence(done),
        # the 20 first questions arrive together from sessions new to the server; later ones as answers end
        "evidence_by_turn": {
            "first": _evidence([r for r in done if r.turn == 0]),
            "later": _evidence([r for r in done if r.turn > 0]),
        },
        "full_answer": latency_stats([r.total_s * 1000 for r in done if r.total_s is not None], 1),
        "p90_s": {
            "evidence": _p90([r.evidence_s for r in done if r.evidence_s is not None]),
            "full_answer": _p90([r.total_s for r in done if r.total_s is not None]),
        },
        # the clients run on the same cores as the server: what each side used while they asked
        "cpu_s": {"server": round(cpu[0], 1), "clients": round(cpu[1], 1)},
        "rss_mb": {"before": round(rss_before), "after": round(rss_after), "peak": round(max(peak[0], rss_after))},
    }


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _watch_stderr(proc: subprocess.Popen) -> threading.Event:
    """Reads the server's stderr to the end (a full pipe would block it); the event is set when the
    server says its passages' sentences are kept."""
    ready = threading.Event()
    stream = proc.stderr
    if stream is None:
        raise RuntimeError("rag serve was started without a pipe for its stderr")

    def read() -> None:
        for raw in stream:
            if raw.decode(errors="replace").startswith(SENTENCES_KEPT_LOG):
                ready.set()

    threading.Thread(target=read, name="serve-stderr", daemon=True).start()
    return ready


def _evidence(records: list[Record]) -> dict[str, float | None]:
    return latency_stats([r.evidence_s * 1000 for r in records if r.evidence_s is not None], 1)


def _p90(values: list[float]) -> float | None:
    return round(percentile(values, 0.9), 2) if values else None


def _s(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.1f}"


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server (it stops its llama-server), then its whole group if it lingers."""
    import signal

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything left in its group (it has exited by now)
    except ProcessLookupError:
        pass


def run(
    settings: Settings,
    *,
    engines: tuple[str, ...] = ("in-process", "managed"),
    clients: int = 20,
    seconds: float = 60.0,
    questions_file: Path | None = None,
    out: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise ValueError(f"unknown engine(s) {unknown}; choose from {', '.join(ENGINES)}")
    questions = questions_from(questions_file or REPO_ROOT / "eval" / "questions.jsonl")
    result: dict[str, Any] = {"llm_threads": settings.llm_threads, "clients": clients, "seconds": seconds}
    for engine in engines:
        log(f"{engine}: {clients} clients for {seconds:.0f} s …")
        result[engine] = r = run_engine(settings, engine, questions, clients=clients, seconds=seconds)
        log(
            f"{engine} ({r['slots']} slot{'s' if r['slots'] != 1 else ''}): {r['answers']} answers, "
            f"{r['errors']} errors, {r['answers_per_minute']} answers/min; evidence p50 "
            f"{_s(r['evidence']['median_ms'])} s p90 {r['p90_s']['evidence']} s (first question of a client "
            f"{_s(r['evidence_by_turn']['first'].get('median_ms'))} s, later "
            f"{_s(r['evidence_by_turn']['later'].get('median_ms'))} s); full answer p50 "
            f"{_s(r['full_answer']['median_ms'])} s p90 {r['p90_s']['full_answer']} s; "
            f"memory {r['rss_mb']['before']} -> {r['rss_mb']['after']} MB (peak {r['rss_mb']['peak']}); "
            f"CPU server {r['cpu_s']['server']} s, clients {r['cpu_s']['clients']} s"
        )
    write_json(result, out)
    return result
