"""Chat models behind one LangChain interface: a local GGUF run by llama.cpp, or any
OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, a llama.cpp server).

The local model runs either in llama.cpp's own server, a managed subprocess whose parallel slots are
decoded together (rag/steps/llm_server.py), or in this process with one llama.cpp context. Either way a
prompt that starts like the previous one re-uses the evaluated prefix (llama.cpp's prefix match), so
the static system prompt is paid for once (per slot). Every chat model the pipeline builds sits behind
a GenerationQueue (rag/steps/generation_queue.py): at most its number of slots generate at once.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from pydantic import ConfigDict, PrivateAttr

from rag.core.choices import LLMBackend, LLMServer
from rag.core.errors import ConfigError, LLMError
from rag.steps.generation_queue import GenerationQueue, request_key
from rag.steps.streamed_chat import StreamedChatModel

log = logging.getLogger(__name__)

TOKEN_COUNTS_KEPT = 20_000  # texts whose token count is kept (least recently used dropped)
N_BATCH = 512  # prompt tokens evaluated per llama.cpp step: a whole question's new tokens at once
_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def to_openai_messages(messages: list[BaseMessage]) -> list[dict[str, str]]:
    out = []
    for m in messages:
        role = _ROLES.get(m.type)
        if role is None:
            raise LLMError(f"message type {m.type!r} is not supported; use system, human or ai messages")
        out.append({"role": role, "content": m.text})
    return out


class LlamaCppChatModel(StreamedChatModel):
    """A GGUF chat model run in-process by llama-cpp-python.

    rope_freq_base is left to the file (0 = read from the GGUF): Qwen2.5 needs 1,000,000, and
    forcing 10,000 (as langchain-community's ChatLlamaCpp does) silently degrades answers.
    """

    model_path: str
    n_ctx: int = 4096
    n_threads: int = 2
    n_batch: int = 512
    temperature: float = 0.0
    max_tokens: int = 256
    stop: list[str] | None = None
    model_config = ConfigDict(arbitrary_types_allowed=True)

    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def model_post_init(self, context: Any) -> None:
        from llama_cpp import Llama

        try:
            self._llama = Llama(
                model_path=self.model_path,
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_batch=self.n_batch,
                rope_freq_base=0.0,
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise LLMError(f"cannot load GGUF model {self.model_path}: {e}") from e

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-gguf"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "temperature": self.temperature}

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "temperature": kwargs.get("temperature", self.temperature),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "stop": stop or self.stop,
        }

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # One llama.cpp context cannot serve two requests at once: callers queue here.
        with self._lock:
            try:
                stream = self._llama.create_chat_completion(
                    messages=to_openai_messages(messages), stream=True, **self._params(stop, kwargs)
                )
                for part in stream:
                    delta = part["choices"][0]["delta"].get("content")
                    if delta:
                        chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
                        if run_manager:
                            run_manager.on_llm_new_token(delta, chunk=chunk)
                        yield chunk
            except ValueError as e:  # llama.cpp raises ValueError when the prompt exceeds n_ctx
                raise LLMError(f"the local model failed: {e}") from e


class QueuedChatModel(StreamedChatModel):
    """``chat`` behind ``queue``: each generation waits for a slot (in arrival order) and holds it
    until its last token; a caller that entered the queue itself with the same messages
    (``queue.enter(request_key(messages))``) keeps its place."""

    chat: BaseChatModel
    queue: GenerationQueue
    model_config = ConfigDict(arbitrary_types_allowed=True)

    @property
    def _llm_type(self) -> str:
        return f"queued-{self.chat._llm_type}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {**self.chat._identifying_params, "slots": self.queue.slots}

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        with self.queue.slot(request_key(messages)):
            yield from self.chat._stream(messages, stop=stop, run_manager=run_manager, **kwargs)


@dataclass(frozen=True)
class ServerOptions:
    """The managed llama-server (llm_server = "managed")."""

    binary: Path
    parallel: int
    log_dir: Path | None
    startup_timeout_s: float = 180.0


@dataclass(frozen=True)
class LLMParams:
    backend: LLMBackend
    model: str  # local: the GGUF path; openai: the model name
    base_url: str  # openai: "" talks to OpenAI itself
    api_key: str | None  # openai: the key's value (read by the caller); local servers need none
    threads: int
    context_tokens: int  # local: the context of one llama.cpp sequence (one slot)
    max_answer_tokens: int
    temperature: float
    timeout_s: float
    server: LLMServer = LLMServer.IN_PROCESS  # local: how the GGUF runs
    server_options: ServerOptions | None = None  # local + managed


def build_chat_model(p: LLMParams) -> BaseChatModel:
    """The chat model ``p`` asks for (temperature 0 by default)."""
    if p.backend == LLMBackend.LOCAL and p.server == LLMServer.MANAGED:
        from rag.steps.llm_server import GGUFTokenizer, LlamaServer, ServerChatModel, ServerParams

        if p.server_options is None:
            raise ConfigError("llm_server='managed' needs the server's options (the pipeline sets them)")
        o = p.server_options
        server = LlamaServer(
            ServerParams(
                binary=o.binary,
                model_path=Path(p.model),
                threads=p.threads,
                parallel=o.parallel,
                slot_context_tokens=p.context_tokens,
                batch_tokens=N_BATCH,
                startup_timeout_s=o.startup_timeout_s,
                log_dir=o.log_dir,
            )
        )
        return ServerChatModel(
            server=server,
            tokenizer=GGUFTokenizer(Path(p.model)),
            temperature=p.temperature,
            max_tokens=p.max_answer_tokens,
            timeout_s=p.timeout_s,
        )
    if p.backend == LLMBackend.LOCAL:
        return LlamaCppChatModel(
            model_path=p.model,
            n_ctx=p.context_tokens,
            n_threads=p.threads,
            n_batch=N_BATCH,
            temperature=p.temperature,
            max_tokens=p.max_answer_tokens,
        )
    from langchain_openai import ChatOpenAI

    # Local servers (Ollama, vLLM, llama.cpp) accept any key; OpenAI itself needs a real one.
    key = p.api_key or ("not-needed" if p.base_url else None)
    if key is None:
        raise ConfigError("llm_backend=openai without llm_base_url talks to OpenAI and needs an API key")
    return ChatOpenAI(
        model=p.model,
        base_url=p.base_url or None,
        api_key=key,  # type: ignore[arg-type]
        temperature=p.temperature,
        max_completion_tokens=p.max_answer_tokens,
        timeout=p.timeout_s,
        max_retries=1,
        streaming=True,
    )


def token_counter(chat: BaseChatModel, model: str) -> Callable[[str], int]:
    """Count tokens as the model does: its own tokenizer locally, tiktoken for OpenAI-style models
    (its files must be in $TIKTOKEN_CACHE_DIR: `rag models --only tiktoken`). Counts are kept: the same
    passages and windows are counted for question after question (about 27 counts a question, 40 % of
    the time before the model is called, measured on the eval questions)."""
    return functools.lru_cache(maxsize=TOKEN_COUNTS_KEPT)(_token_counter(chat, model))


def _token_counter(chat: BaseChatModel, model: str) -> Callable[[str], int]:
    while isinstance(chat, QueuedChatModel):
        chat = chat.chat
    count_tokens = getattr(chat, "count_tokens", None)  # the local models: their own tokenizer
    if callable(count_tokens):
        return count_tokens
    import tiktoken

    try:
        try:
            encoding = tiktoken.encoding_for_model(model)
        except KeyError:  # a model tiktoken does not know (Ollama, vLLM names): OpenAI's common encoding
            encoding = tiktoken.get_encoding("cl100k_base")
    except Exception as e:  # tiktoken raises requests' ConnectionError when its file is not cached
        raise ConfigError(
            f"tiktoken has no local file for {model!r} ({type(e).__name__}); run `rag models --only tiktoken`"
        ) from e
    return lambda text: len(encoding.encode(text, disallowed_special=()))
