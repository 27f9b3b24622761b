"""`rag serve` driven the way an attacker would (issue 18): hostile uploads through the page's own
upload and add events (raw HTTP, as the browser sends them), every bad API input, 50 wrong logins,
another user's upload URL, and indexing while questions keep coming. Fake embedder and chat model."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fakes import EchoChatModel, SlowHashingEmbedder
from test_ui import NATO_QUESTION, build_pipeline

from rag.core.choices import LLMBackend
from rag.pipeline import Pipeline
from ui.app import launch, status_html
from ui.auth import FailureLog

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(range(256)) * 8


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    pipeline = build_pipeline(root, EchoChatModel())
    demo = launch(pipeline, block=False)
    yield SimpleNamespace(url=demo.local_url, pipeline=pipeline, corpus=pipeline.settings.corpus_dir)
    demo.close()


def _upload(base: str, files: dict[str, bytes], cookies: Any = None) -> list[dict[str, Any]]:
    """POST /gradio_api/upload as the page does; returns FileData for the add event."""
    r = httpx.post(base + "gradio_api/upload", files=[("files", (n, b)) for n, b in files.items()], cookies=cookies)
    r.raise_for_status()
    return [
        {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}
        for name, path in zip(files, r.json(), strict=True)
    ]


def _page_event(base: str, api_name: str, data: list[Any]) -> list[Any]:
    """Run one of the page's own (private) events through the queue, exactly as the browser does."""
    config = httpx.get(base + "config").json()
    dep = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
    session = uuid.uuid4().hex
    body = {"data": data, "fn_index": dep["id"], "session_hash": session, "event_data": None}
    body["trigger_id"] = dep["targets"][0][0]
    event_id = httpx.post(base + "gradio_api/queue/join", json=body).json()["event_id"]
    with httpx.stream("GET", base + f"gradio_api/queue/data?session_hash={session}", timeout=120) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                    assert message["success"], message
                    return message["output"]["data"]
    raise AssertionError("the event never completed")


def test_hostile_uploads_are_reported_once_and_moved_out(app):
    before = len(app.pipeline.index.documents)
    good = "Gubernur Jakarta meresmikan jembatan baru di Cikini pada Senin pagi."
    files = {
        "surrogate.jsonl": (
            json.dumps({"id": "s1", "text": "Berita \ud800 tentang banjir di Bekasi pada Minggu."}) + "\n"
        ).encode(),
        "bigid.jsonl": (json.dumps({"id": 0, "text": "Angka panjang."}).replace("0", "7" * 5000, 1) + "\n").encode(),
        "link.txt": f"{good} Lihat ![status](http://127.0.0.1:9911/leak?q=SYSTEM_PROMPT).".encode(),
        "tool.txt": EXE,  # an .exe renamed .txt
        "evil.exe": EXE,
        "empty.md": b"   \n",
    }
    added_html, status, cleared = _page_event(app.url, "add_files", [_upload(app.url, files), "local"])
    assert "Added 2 file(s) (2 article(s)): surrogate.jsonl, link.txt" in added_html  # not 5: counts are right
    for name in ("bigid.jsonl", "tool.txt", "empty.md"):
        assert f"Skipped {name}:" in added_html and f"moved to .rejected/{name}" in added_html
        assert (app.corpus / ".rejected" / name).is_file() and not (app.corpus / "uploads" / name).exists()
    assert "Rejected evil.exe: type .exe is not accepted" in added_html
    assert "<a " not in added_html and cleared is None
    assert len(app.pipeline.index.documents) == before + 2  # searchable at once
    doc = app.pipeline.index.documents["s1"]
    assert "\ufffd" in doc.text and "\ud800" not in doc.text  # the lone surrogate became U+FFFD
    again = app.pipeline.ingest()
    assert not [s for s in again.skipped if "uploads" in s.source]  # reported once: nothing left to skip


def test_an_upload_url_is_never_served_to_anyone(app):
    [uploaded] = _upload(app.url, {"secret.txt": b"Rahasia redaksi: sumber kami adalah A."})
    other_user = httpx.Client()  # no cookies, another session: what anyone holding the URL could do
    assert other_user.get(app.url + f"gradio_api/file={uploaded['path']}").status_code == 403
    _page_event(app.url, "add_files", [[uploaded], "local"])
    assert not Path(uploaded["path"]).exists()  # gradio's copy is deleted once it is in the corpus
    assert other_user.get(app.url + f"gradio_api/file={uploaded['path']}").status_code == 403
    assert other_user.get(app.url + f"gradio_api/file={app.corpus / 'uploads' / 'secret.txt'}").status_code == 403


BAD_INPUTS = [
    # (id, question, mode, k, code)
    ("empty", "", "bm25", 3, "bad_question"),
    ("only-zero-width", "\u200b\u200b\ufeff", "bm25", 3, "bad_question"),
    ("too-long", "kata " * 2000, "bm25", 3, "bad_question"),
    ("not-text", 12345, "bm25", 3, "bad_question"),
    ("list", ["Siapa?"], "bm25", 3, "bad_question"),
    ("k-zero", NATO_QUESTION, "bm25", 0, "bad_k"),
    ("k-51", NATO_QUESTION, "bm25", 51, "bad_k"),
    ("k-10000", NATO_QUESTION, "bm25", 10_000, "bad_k"),
    ("k-1e300", NATO_QUESTION, "bm25", 1e300, "bad_k"),
    ("k-fraction", NATO_QUESTION, "bm25", 2.5, "bad_k"),
    ("k-null", NATO_QUESTION, "bm25", None, "bad_k"),
    ("k-text", NATO_QUESTION, "bm25", "3", "bad_k"),
    ("k-bool", NATO_QUESTION, "bm25", True, "bad_k"),
    ("mode-unknown", NATO_QUESTION, "vector", 3, "bad_mode"),
    ("mode-null", NATO_QUESTION, None, 3, "bad_mode"),
]


@pytest.mark.parametrize(("question", "mode", "k", "code"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_ask_rejects_each_bad_input_with_a_structured_error(app, capfd, question, mode, k, code):
    from gradio_client import Client

    result = Client(app.url, verbose=False).predict(question, mode, k, api_name="/ask")
    assert result["error"]["code"] == code and len(result["error"]["message"]) > 20, result
    assert "Traceback" not in capfd.readouterr().err  # an expected rejection is one INFO line


BAD_CHATS = [
    # (id, message, history, mode, k, llm, code, words in the message)
    ("k-null", NATO_QUESTION, [], "bm25", None, "local", "bad_k", "k is missing"),
    ("k-huge", NATO_QUESTION, [], "bm25", 10_000, "local", "bad_k", "from 1 to 50"),
    ("llm-unknown", NATO_QUESTION, [], "bm25", 3, "gpt-9", "bad_llm", "choose one of local"),
    ("history-text", NATO_QUESTION, "abc", "bm25", 3, "local", "bad_history", "must be a list"),
    ("history-role", NATO_QUESTION, [{"role": "system", "content": "x"}], "bm25", 3, "local", "bad_history", "role"),
    ("history-content", NATO_QUESTION, [{"role": "user", "content": 5}], "bm25", 3, "local", "bad_history", "content"),
    (
        "history-long",
        NATO_QUESTION,
        [{"role": "user", "content": "x"}] * 201,
        "bm25",
        3,
        "local",
        "bad_history",
        "limit",
    ),
    ("empty", "   ", [], "bm25", 3, "local", "bad_question", "empty"),
]


@pytest.mark.parametrize(
    ("message", "history", "mode", "k", "llm", "code", "words"),
    [c[1:] for c in BAD_CHATS],
    ids=[c[0] for c in BAD_CHATS],
)
def test_chat_rejects_each_bad_input_with_the_products_message(app, capfd, message, history, mode, k, llm, code, words):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        Client(app.url, verbose=False).predict(message, history, mode, k, llm, api_name="/chat")
    assert words in caught.value.message and caught.value.title == code
    assert "Traceback" not in capfd.readouterr().err


def test_invisible_characters_are_removed_from_questions(app):
    from gradio_client import Client

    hidden = "Siapa\u200b Duta\u202e Besar\u200f Rusia\ufeff untuk NATO?"
    result = Client(app.url, verbose=False).predict(hidden, "bm25", 3, api_name="/ask")
    assert result["question"] == NATO_QUESTION and result["citations"][0]["doc_id"] == "nato.txt"


def test_fifty_wrong_logins_are_slowed_then_refused(tmp_path: Path):
    auth_file = tmp_path / "auth"
    auth_file.write_text("# who may read the chat\nredaksi:kata-sandi-panjang\n", encoding="utf-8")
    auth_file.chmod(0o600)
    pipeline = build_pipeline(tmp_path, EchoChatModel(), auth_file=auth_file)
    demo = launch(pipeline, block=False)
    try:
        login = demo.local_url + "login"
        started = time.monotonic()
        codes = [
            httpx.post(login, data={"username": "redaksi", "password": f"tebakan-{i}"}).status_code for i in range(50)
        ]
        elapsed = time.monotonic() - started
        assert codes[:5] == [400] * 5 and set(codes[5:]) == {429}
        assert elapsed >= 5 * 0.5  # each failure answered slowly; the other 45 never reach the password check
        refused = httpx.post(login, data={"username": "redaksi", "password": "kata-sandi-panjang"})
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60  # locked for now
        assert "try again in" in refused.json()["detail"]
        assert httpx.get(demo.local_url + "config").status_code in (401, 403)  # nothing without a login
    finally:
        demo.close()


def test_login_failures_expire_and_are_counted_per_address():
    now = [0.0]
    failures = FailureLog(max_failures=5, window_s=60, clock=lambda: now[0])
    for _ in range(5):
        failures.failed("10.0.0.1")
    assert failures.wait_s("10.0.0.1") == 60 and failures.wait_s("10.0.0.2") == 0
    now[0] = 59.0
    assert failures.wait_s("10.0.0.1") == pytest.approx(1.0)
    now[0] = 60.5
    assert failures.wait_s("10.0.0.1") == 0
    failures.failed("10.0.0.1")
    failures.succeeded("10.0.0.1")
    assert failures.wait_s("10.0.0.1") == 0


def test_answers_never_wait_for_indexing_and_the_new_generation_is_switched_to(tmp_path: Path):
    pipeline = build_pipeline(tmp_path, EchoChatModel())
    pipeline._embedder = SlowHashingEmbedder(delay_s=2.0)  # this ingest takes seconds; queries stay fast
    corpus = pipeline.settings.corpus_dir
    (corpus / "banjir.txt").write_text("Banjir besar melanda Bekasi pada Minggu malam.", encoding="utf-8")
    answerer = pipeline.answerer(mode="bm25", k=3)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (pipeline.ingest(), done.set()))
    worker.start()
    while pipeline.ingest_progress is None and not done.is_set():
        time.sleep(0.01)
    started = time.monotonic()
    answer = answerer.answer("Di mana banjir besar melanda?")
    assert time.monotonic() - started < 1.5 and not done.is_set()  # answered while the ingest still embeds
    assert "banjir.txt" not in {h.chunk.doc_id for h in answer.hits}  # from the current generation
    assert "Indexing" in status_html(pipeline, "local")
    worker.join(timeout=60)
    hits = pipeline.answerer(mode="bm25", k=3).answer("Di mana banjir besar melanda?").hits
    assert "banjir.txt" in {h.chunk.doc_id for h in hits}  # switched once committed


def test_an_ingest_by_another_process_is_picked_up_and_damage_is_reported(tmp_path: Path):
    pipeline = build_pipeline(tmp_path, EchoChatModel())
    served = pipeline.index.manifest["generation"]
    assert not pipeline.refresh_index() and pipeline.index.manifest["generation"] == served  # one stat(): no change
    corpus = pipeline.settings.corpus_dir
    (corpus / "gempa.txt").write_text("Gempa kecil mengguncang Cianjur pada Selasa dini hari.", encoding="utf-8")
    other = Pipeline(pipeline.settings, embedder=pipeline.embedder, chat_models={LLMBackend.LOCAL: EchoChatModel()})
    other.ingest()  # like `rag ingest` in another process, while this one serves
    assert pipeline.refresh_index() and "gempa.txt" in pipeline.index.documents
    (corpus / "badai.txt").write_text("Badai melanda Makassar pada Rabu sore.", encoding="utf-8")
    other.ingest()
    generation = json.loads((pipeline.settings.index_dir / "manifest.json").read_text())["generation"]
    chunks = pipeline.settings.index_dir / generation / "chunks.jsonl"
    chunks.write_bytes(chunks.read_bytes()[:-40])  # damaged after its commit
    assert not pipeline.refresh_index()
    assert "badai.txt" not in pipeline.index.documents and "gempa.txt" in pipeline.index.documents  # still serving
    assert "chunks.jsonl" in pipeline.index_problem and "cannot be used" in status_html(pipeline, "local")
    assert pipeline.answerer(mode="bm25", k=3).answer("Gempa di Cianjur kapan?").citations  # still answering


def test_credentials_come_from_the_environment_or_a_file(tmp_path: Path, caplog):
    from rag.core.errors import ConfigError
    from rag.settings import load_settings
    from ui.auth import read_credentials

    settings = load_settings(environ={"RAG_AUTH": "redaksi:rahasia"})
    assert read_credentials(settings.auth, settings.auth_file) == [("redaksi", "rahasia")]
    auth_file = tmp_path / "auth"
    auth_file.write_text("# editors\nani:satu\n\nbudi:dua:tiga\n", encoding="utf-8")
    auth_file.chmod(0o644)
    with caplog.at_level("WARNING"):
        assert read_credentials("", auth_file) == [("ani", "satu"), ("budi", "dua:tiga")]
    assert "chmod 600" in caplog.text  # readable by others: said once, at start
    auth_file.write_text("ani\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1 of .* must look like user:password"):
        read_credentials("", auth_file)
    with pytest.raises(ConfigError, match="cannot read auth_file"):
        read_credentials("", tmp_path / "missing")
