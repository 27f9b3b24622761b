"""Fakes that behave: a hashing embedder (texts sharing words are close) and a scripted chat model."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Bag of hashed lowercase words, L2-normalised. Deterministic and fast."""

    def __init__(self, dim: int = 256, name: str = "hashing-test") -> None:
        self.name = name
        self.dim = dim
        self.query_prefix = ""
        self.passage_prefix = ""
        self.calls: list[int] = []  # number of texts per embed_documents call

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            h = int(hashlib.md5(word.encode()).hexdigest(), 16)
            v[h % self.dim] += 1.0
        norm = np.linalg.norm(v)
        return v / norm if norm else v

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text)) + 2

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        return [self.count_tokens(t) for t in texts]

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "normalized": True,
            "query_prefix": "",
            "passage_prefix": "",
            "max_seq_length": 512,
        }


class ScriptedChatModel(BaseChatModel):
    """Returns queued replies in order, streamed a few characters at a time; records every prompt."""

    replies: list[str] = Field(default_factory=list)
    prompts: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _next(self, messages: list[BaseMessage]) -> str:
        self.prompts.append(messages)
        if not self.replies:
            raise AssertionError("the scripted chat model was called more often than scripted")
        return self.replies.pop(0)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._next(messages)))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._next(messages)
        for i in range(0, len(reply), 5):
            yield ChatGenerationChunk(message=AIMessageChunk(content=reply[i : i + 5]))


class EchoChatModel(ScriptedChatModel):
    """Answers with the first sentence of passage [1], cited: grounded by construction."""

    def _next(self, messages: list[BaseMessage]) -> str:
        self.prompts.append(messages)
        user = messages[-1].text
        line = next((line for line in user.splitlines() if line.startswith("[1] ")), None)
        if line is None:  # a prompt without numbered passages (the textbook chain's "Context:")
            return "I don't know."
        sentence = re.split(r"(?<=[.!?])\s", line[4:], maxsplit=1)[0].rstrip(".!?")
        return f"{sentence} [1]."


class SlowEchoChatModel(EchoChatModel):
    """EchoChatModel that writes its reply a word at a time, ``delay_s`` apart (a model caught
    mid-answer). Counts the streams running now and those closed before their end."""

    delay_s: float = 0.2
    running: int = 0
    closed_early: int = 0
    pieces: int = 0  # pieces written by all streams

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        import time

        reply = self._next(messages)
        words = re.findall(r"\S+\s*", reply)
        self.running += 1
        done = False
        try:
            for word in words:
                time.sleep(self.delay_s)
                self.pieces += 1
                yield ChatGenerationChunk(message=AIMessageChunk(content=word))
            done = True
        finally:
            self.running -= 1
            if not done:
                self.closed_early += 1


class SlowHashingEmbedder(HashingEmbedder):
    """HashingEmbedder whose document batches take ``delay_s`` each (an ingest that takes a while);
    queries stay fast."""

    def __init__(self, delay_s: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay_s = delay_s

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        import time

        time.sleep(self.delay_s)
        return super().embed_documents(texts)
