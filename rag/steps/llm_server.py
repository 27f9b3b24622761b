"""llama.cpp's own server (llama-server) as a managed subprocess, so that several conversations share
one model: the server decodes its parallel slots together (continuous batching), and each slot keeps
the prompt it last read, so the static system prompt is read once per slot, not once per question.

The product starts it on 127.0.0.1 on a free port with the GGUF file (rope frequency and the chat
template are read from the file), waits for /health, restarts it when it has died (checked before
each request, and on a refused connection), and stops it, with its whole process group, on exit.
The chat model talks to it through the OpenAI-compatible client the product already uses for
endpoints (langchain_openai.ChatOpenAI); token counts come from the model's own tokenizer, read from
the same GGUF file (llama.cpp, vocabulary only).
"""

from __future__ import annotations

import atexit
import ctypes
import http.client
import logging
import os
import queue
import signal
import socket
import subprocess
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from pydantic import ConfigDict, PrivateAttr

from rag.core.errors import ConfigError, LLMError
from rag.steps.streamed_chat import StreamedChatModel

log = logging.getLogger(__name__)

BINARY_NAME = "llama-server"
HOST = "127.0.0.1"
_LOG_TAIL_BYTES = 3000
CACHE_RAM_MIB = 128  # ~7 prompts of the bundled model's size
# added to the server's nice value: when generation has the cores busy, the product's own threads
# (retrieval of the next questions, their evidence, streaming) still run at once; an ingest in the
# serving process runs at +10 (rag/pipeline.py), below both
SERVER_NICENESS = 5


@dataclass(frozen=True)
class ServerParams:
    binary: Path
    model_path: Path
    threads: int
    parallel: int  # slots: requests decoded together
    slot_context_tokens: int  # context of one slot; the server gets parallel x this
    batch_tokens: int  # prompt tokens evaluated per step
    startup_timeout_s: float
    log_dir: Path | None  # the server's own output goes to llama-server-<port>.log here; None: discarded


def find_server_binary(explicit: str, candidates: Sequence[Path]) -> Path:
    """``explicit`` when given (a path, or a name on PATH), else the first existing candidate."""
    import shutil

    if explicit:
        path = Path(explicit).expanduser()
        found = path if path.is_file() else (Path(w) if (w := shutil.which(explicit)) else None)
        if found is None or not os.access(found, os.X_OK):
            raise ConfigError(
                f"llm_server_binary={explicit!r} is not an executable file; give the path of a llama-server "
                "binary, or leave it empty for the one scripts/setup.sh builds"
            )
        return found.resolve()
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    where = ", ".join(str(p) for p in candidates)
    raise ConfigError(
        f"llm_server='managed' needs llama.cpp's llama-server and none was found (looked in {where}); "
        "run scripts/setup.sh (it builds one), set llm_server_binary to an existing one, "
        "or set llm_server='in-process'"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# --- starting children from one long-lived thread -------------------------------------------------
# The child asks the kernel to SIGKILL it when its parent dies (PR_SET_PDEATHSIG), so a server never
# outlives a product that was killed without running atexit. SIGKILL, not SIGTERM: llama-server's own
# graceful shutdown was seen to hang ("cleaning up before exit", then nothing), and it holds nothing
# worth flushing. That signal follows the *thread* that forked the child, so every child is forked by
# one daemon thread that lives as long as the process.
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if os.name == "posix" else None
_spawn_requests: queue.Queue[tuple[list[str], dict[str, Any], queue.Queue[Any]]] = queue.Queue()
_spawner: threading.Thread | None = None
_spawner_lock = threading.Lock()


def _die_with_parent() -> None:  # runs in the child between fork and exec: system calls only
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _libc.nice(SERVER_NICENESS)  # inherited by every thread the server starts


def _spawn_loop() -> None:
    while True:
        command, options, reply = _spawn_requests.get()
        try:
            reply.put(subprocess.Popen(command, preexec_fn=_die_with_parent, **options))
        except OSError as e:
            reply.put(e)


def _spawn(command: list[str], **options: Any) -> subprocess.Popen:
    global _spawner
    with _spawner_lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = threading.Thread(target=_spawn_loop, name="llama-server-spawner", daemon=True)
            _spawner.start()
    reply: queue.Queue[Any] = queue.Queue()
    _spawn_requests.put((command, options, reply))
    result = reply.get()
    if isinstance(result, Exception):
        raise result
    return result


_servers: weakref.WeakSet[LlamaServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_servers):
        server.stop()


class LlamaServer:
    """One llama-server process, started on first use and restarted when it has died."""

    def __init__(self, params: ServerParams) -> None:
        self.params = params
        self.restarts = 0
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._port: int | None = None
        self._log: Any = None
        self._log_path: Path | None = None
        _servers.add(self)

    def command(self, port: int) -> list[str]:
        p = self.params
        return [
            str(p.binary),
            "--model",
            str(p.model_path),
            "--host",
            HOST,
            "--port",
            str(port),
            "--threads",
            str(p.threads),
            "--threads-batch",
            str(p.threads),
            "--ctx-size",
            str(p.slot_context_tokens * p.parallel),
            "--parallel",
            str(p.parallel),
            "--cont-batching",
            "--batch-size",
            str(p.batch_tokens),
            # each slot keeps the prompt it last read in its own context; the extra copies in host memory
            # (default up to 8 GiB) are capped so that memory stays bounded under load
            "--cache-ram",
            str(CACHE_RAM_MIB),
            "--no-webui",
        ]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        """The base URL of the running server (started if it is not)."""
        return self.ensure_running()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ensure_running(self) -> str:
        """Start the server, or restart it when its process has exited; returns its base URL."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is not None:
                log.warning(
                    "llama-server (pid %s) exited with %s; restarting it. Its last output:\n%s",
                    self._proc.pid,
                    self._proc.returncode,
                    self._log_tail(),
                )
                self._proc = None
                self.restarts += 1
            if self._proc is None:
                self._start()
            return f"http://{HOST}:{self._port}"

    def restart(self, reason: str) -> str:
        """Stop the server (even when it still runs but does not answer) and start it again."""
        log.warning("restarting llama-server: %s", reason)
        with self._lock:
            self._stop_locked()
            self.restarts += 1
            self._start()
            return f"http://{HOST}:{self._port}"

    def healthy(self, timeout_s: float = 2.0) -> bool:
        """True when the process runs and /health answers 200 (the model is loaded)."""
        if not self.running() or self._port is None:
            return False
        return _get_status(self._port, "/health", timeout_s) == 200

    def stop(self) -> None:
        with self._lock:
            self._stop_locked()

    # -- internals --------------------------------------------------------------------------------
    def _start(self) -> None:
        p = self.params
        if not p.model_path.is_file():
            raise LLMError(f"the GGUF file {p.model_path} is missing; run `rag models`")
        last_error = ""
        for _ in range(3):  # another process may take the free port between our look and the bind
            port = self._port or free_port()
            output: Any = subprocess.DEVNULL
            if p.log_dir is not None:  # one file per port: servers of several products never share one
                p.log_dir.mkdir(parents=True, exist_ok=True)
                if self._log is not None:
                    self._log.close()
                self._log_path = p.log_dir / f"llama-server-{port}.log"
                output = self._log = open(self._log_path, "wb")  # noqa: SIM115 - open while the child writes
                output.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.command(port))}\n".encode())
                output.flush()
            try:
                proc = _spawn(
                    self.command(port),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stopped as a whole
                )
            except OSError as e:
                raise LLMError(f"cannot start {p.binary}: {e}; rebuild it with scripts/setup.sh") from e
            started = time.monotonic()
            log.info("llama-server starting (pid %s, port %s, %s slots)", proc.pid, port, p.parallel)
            while time.monotonic() - started < p.startup_timeout_s:
                if proc.poll() is not None:
                    break
                if _get_status(port, "/health", 1.0) == 200:
                    self._proc, self._port = proc, port
                    log.info("llama-server ready in %.1f s", time.monotonic() - started)
                    return
                time.sleep(0.1)
            if proc.poll() is None:  # still loading after the timeout
                _terminate(proc)
                raise LLMError(
                    f"llama-server did not answer /health within {p.startup_timeout_s:.0f} s; "
                    f"its output:\n{self._log_tail()}"
                )
            last_error = f"exit code {proc.returncode}; its output:\n{self._log_tail()}"
            self._port = None  # try another port
        raise LLMError(f"llama-server ({p.binary}) failed to start: {last_error}")

    def _stop_locked(self) -> None:
        if self._proc is not None:
            _terminate(self._proc)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self) -> str:
        path = self._log_path
        if path is None or not path.is_file():
            return "(no log)"
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - _LOG_TAIL_BYTES))
            return f.read().decode("utf-8", "replace")


def _get_status(port: int, path: str, timeout_s: float) -> int | None:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except OSError:
        return None
    finally:
        conn.close()


def _terminate(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM to the process group, SIGKILL if it has not exited after ``grace_s`` (llama-server's
    graceful shutdown can hang)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace_s)
    except ProcessLookupError:
        pass


class GGUFTokenizer:
    """The model's own tokenizer, read from the GGUF file without its weights (llama.cpp vocab_only)."""

    def __init__(self, model_path: Path) -> None:
        from llama_cpp import Llama

        try:
            self._llama = Llama(model_path=str(model_path), vocab_only=True, verbose=False)
        except (ValueError, RuntimeError) as e:
            raise LLMError(f"cannot read the tokenizer of {model_path}: {e}") from e

    def count(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))


class ServerChatModel(StreamedChatModel):
    """The chat model served by a managed LlamaServer, through the OpenAI-compatible client.

    Before each request the server is checked (started or restarted when its process has exited);
    a refused connection before the first token restarts it and tries once more."""

    server: Any  # LlamaServer
    tokenizer: Any  # GGUFTokenizer
    temperature: float = 0.0
    max_tokens: int = 256
    timeout_s: float = 120.0
    model_config = ConfigDict(arbitrary_types_allowed=True)

    _client: Any = PrivateAttr(default=None)
    _client_url: str = PrivateAttr(default="")
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llama-server-managed"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": str(self.server.params.model_path), "slots": self.server.params.parallel}

    def count_tokens(self, text: str) -> int:
        return self.tokenizer.count(text)

    def _client_for(self, url: str) -> Any:
        from langchain_openai import ChatOpenAI

        with self._client_lock:
            if self._client is None or self._client_url != url:
                self._client = ChatOpenAI(
                    model="local",
                    base_url=f"{url}/v1",
                    api_key="not-needed",  # type: ignore[arg-type]
                    temperature=self.temperature,
                    max_completion_tokens=self.max_tokens,
                    timeout=self.timeout_s,
                    max_retries=0,  # a dead server is restarted here, not retried blindly
                    streaming=True,
                    # each slot keeps the prompt it last read; a prompt that starts the same way (the
                    # system prompt) is not read again
                    extra_body={"cache_prompt": True},
                )
                self._client_url = url
            return self._client

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        import openai

        for attempt in (1, 2):
            client = self._client_for(self.server.ensure_running())
            yielded = False
            try:
                for chunk in client._stream(messages, stop=stop, **kwargs):
                    if chunk.text:
                        yielded = True
                        if run_manager:
                            run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
                return
            except openai.APIConnectionError as e:
                if yielded or attempt == 2:
                    raise LLMError(f"the local llama-server failed while answering: {e}") from e
                self.server.restart(f"connection failed ({type(e).__name__}: {e})")
            except openai.APIError as e:
                raise LLMError(f"the local llama-server refused the request: {e}") from e
