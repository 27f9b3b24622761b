"""The OpenAI-compatible backend against a small server on loopback that speaks the chat
completions protocol (streamed server-sent events), as Ollama, vLLM or a llama.cpp server do."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import fake_retriever

from rag.pipeline import answer_params, llm_params
from rag.settings import Settings
from rag.steps.answer.answerer import Answerer
from rag.steps.llm import build_chat_model, token_counter
from rag.steps.prompting import load_prompts


class _Handler(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        user = body["messages"][-1]["content"]
        first = next(line for line in user.splitlines() if line.startswith("[1] "))[4:]
        reply = re.split(r"(?<=[.!?])\s", first, maxsplit=1)[0].rstrip(".") + " [1]."
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for i in range(0, len(reply), 6):
            chunk = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {"content": reply[i : i + 6]}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        end = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Handler.seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def _answerer(settings: Settings, corpus_dir: Path, tmp_path: Path) -> Answerer:
    """The answer chain over a fake retriever and the real OpenAI-compatible client (its token counts
    from tiktoken's files, provisioned into the test's cache: the caller points TIKTOKEN_CACHE_DIR there)."""
    retriever = fake_retriever(corpus_dir, tmp_path / "index")
    chat = build_chat_model(llm_params(settings, settings.llm_backend))
    count = token_counter(chat, settings.llm_model)
    return Answerer(
        retriever, retriever.embedder, chat, load_prompts(settings.prompts_dir), count, answer_params(settings)
    )


def test_openai_compatible_endpoint_answers_through_the_same_chain(
    server, corpus_dir: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("MY_ENDPOINT_KEY", "sk-test-secret")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache" / "tiktoken"))
    settings = Settings(
        llm_backend="openai",
        llm_base_url=server,
        llm_model="qwen2.5:7b",
        k=3,
        llm_api_key_env="MY_ENDPOINT_KEY",
        min_evidence=0.05,
        cache_dir=tmp_path / "cache",
    ).validated()
    from rag.models.tiktoken_provision import provision_tiktoken

    provision_tiktoken(tmp_path / "cache" / "tiktoken")
    answerer = _answerer(settings, corpus_dir, tmp_path)
    events = list(answerer.stream("Siapa Duta Besar Rusia untuk NATO?"))
    tokens = [e for e in events if e.kind == "token"]
    answer = events[-1].answer
    assert len(tokens) > 2 and answer is not None
    assert not answer.declined and answer.citations and answer.citations[0].n == 1
    (request,) = _Handler.seen
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test-secret"  # the key comes from the named variable
    assert request["body"]["model"] == "qwen2.5:7b" and request["body"]["temperature"] == 0.0
    assert request["body"]["stream"] is True
    assert "sk-test-secret" not in json.dumps(answer.to_json())


def test_unreachable_endpoint_is_a_clear_error(corpus_dir: Path, tmp_path: Path, monkeypatch):
    from rag.core.errors import LLMError

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "cache" / "tiktoken"))
    from rag.models.tiktoken_provision import provision_tiktoken

    settings = Settings(
        llm_backend="openai",
        llm_base_url="http://127.0.0.1:9/v1",
        llm_model="m",
        k=3,
        llm_timeout_s=2,
        min_evidence=0.05,
        cache_dir=tmp_path / "cache",
    ).validated()
    provision_tiktoken(tmp_path / "cache" / "tiktoken")
    answerer = _answerer(settings, corpus_dir, tmp_path)
    with pytest.raises(LLMError, match="the chat model failed: .*Connection"):
        answerer.answer("Siapa Duta Besar Rusia untuk NATO?")
