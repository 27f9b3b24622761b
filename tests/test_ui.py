"""The chat page, launched for real on loopback with a fake embedder and an echoing chat model:
driven through gradio_client and through Debian's Chromium with Playwright."""

from __future__ import annotations

import shutil
import socket
import tempfile
from pathlib import Path

import pytest
from fakes import EchoChatModel, HashingEmbedder

from rag.core.choices import LLMBackend
from rag.core.errors import ConfigError
from rag.pipeline import Pipeline
from rag.settings import REPO_ROOT, Settings
from ui.app import launch, safe_upload_name, save_uploads
from ui.html import answer_markdown, sources_html

ARTIFACTS = REPO_ROOT / "test-artifacts"
HOSTILE = "Catatan redaksi <script>window.__pwned = 1; alert('x')</script> <b>tebal</b> selesai."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from conftest import ARTICLES

    root = tmp_path_factory.mktemp("ui")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in ARTICLES.items():
        (corpus / name).write_text(text, encoding="utf-8")
    (corpus / "hostile.txt").write_text(HOSTILE, encoding="utf-8")
    settings = Settings(
        corpus_dir=corpus,
        index_dir=root / "index",
        port=_free_port(),
        k=3,
        chunk_tokens=40,
        min_evidence=0.05,
        cache_dir=root / "cache",
    ).validated()
    pipeline = Pipeline(settings, embedder=HashingEmbedder(), chat_models={LLMBackend.LOCAL: EchoChatModel()})
    pipeline.ingest()
    from rag.models.tiktoken_provision import provision_tiktoken

    provision_tiktoken(root / "cache" / "tiktoken")  # the echo model is not local: budgets use tiktoken
    demo = launch(pipeline, block=False)
    yield demo.local_url
    demo.close()


def test_gradio_client_streams_an_answer_with_citations(app_url: str):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    job = client.submit("Siapa Duta Besar Rusia untuk NATO?", [], "hybrid", 3, "local", api_name="/chat")
    updates = list(job)
    assert len(updates) >= 3  # the question, streamed tokens, the checked answer
    _, chat, sources = job.result()
    final = chat[-1]["content"][0]["text"]
    assert "#src-1-1" in final and "Grushko" in sources
    result = client.predict("Siapa Duta Besar Rusia untuk NATO?", "bm25", 3, api_name="/ask")
    assert result["citations"] and result["citations"][0]["n"] == 1
    assert result["citations"][0]["doc_id"] == "nato.txt"


def test_document_text_is_escaped_in_the_page(app_url: str):
    from gradio_client import Client

    result = Client(app_url, verbose=False).predict("Catatan redaksi tebal selesai", "bm25", 3, api_name="/ask")
    assert any("<script>" in h["text"] for h in result["hits"])  # the raw text is data in the API


def test_render_escapes_documents_and_model_text():
    from rag.core.types import Answer, Chunk, Citation, Document

    doc = Document("h.txt", HOSTILE, "<i>title</i>", "h.txt")
    chunk = Chunk("h.txt#0-10", "h.txt", 0, len(HOSTILE), HOSTILE, "<i>title</i>")
    answer = Answer("q", "<img src=x onerror=alert(1)> ok [1].", "en", (Citation(1, chunk),), (), False)
    html = sources_html([(1, "<q>", answer)], {"h.txt": doc})
    assert "<script>" not in html and "&lt;script&gt;" in html and "<i>title" not in html
    md = answer_markdown(answer, 1)
    assert "<img" not in md and "(#src-1-1)" in md


def test_uploads_cannot_escape_and_are_limited(tmp_path: Path):
    assert safe_upload_name("../../etc/passwd.txt") == "passwd.txt"
    assert safe_upload_name("..\\..\\evil name!.MD") == "evil_name.md"
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("Berita.", encoding="utf-8")
    (src / "tool.exe").write_bytes(b"MZ")
    (src / "big.txt").write_text("x" * 5000, encoding="utf-8")
    saved, rejected = save_uploads([str(src / n) for n in ("ok.txt", "tool.exe", "big.txt")], tmp_path / "corpus", 1000)
    assert saved == ["ok.txt"] and len(rejected) == 2
    assert (tmp_path / "corpus" / "uploads" / "ok.txt").is_file()
    saved, _ = save_uploads([str(src / "ok.txt")], tmp_path / "corpus", 1000)
    assert saved == ["ok-1.txt"]  # never overwrites


def test_other_addresses_need_authentication(tmp_path: Path):
    settings = Settings(index_dir=tmp_path / "index", host="0.0.0.0")
    with pytest.raises(ConfigError, match="--auth"):
        launch(Pipeline(settings), block=False)


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_browser_example_answer_and_citation(app_url: str):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", args=args, viewport={"width": 1366, "height": 900}
        )
        try:
            for name, viewport in (
                ("desktop", {"width": 1366, "height": 900}),
                ("phone", {"width": 390, "height": 844}),
            ):
                page = browser.new_page()
                page.set_viewport_size(viewport)
                dialogs: list[str] = []
                page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))
                page.goto(app_url)
                page.wait_for_selector("#question textarea", timeout=30_000)
                page.get_by_text("Who is Russia's ambassador to NATO?").first.click()
                box = page.locator("#question textarea")
                expect(box).to_have_value("Who is Russia's ambassador to NATO?")  # the example fills the box
                box.press("Enter")
                link = page.locator('#chat a[href*="#src-"]').first
                try:
                    link.wait_for(timeout=60_000)
                except Exception:
                    page.screenshot(path=str(ARTIFACTS / f"failed-{name}.png"), full_page=True)
                    raise
                page.screenshot(path=str(ARTIFACTS / f"answer-{name}.png"), full_page=True)
                link.click()
                active = page.locator(".source.active")
                active.wait_for(timeout=10_000)
                highlighted = active.locator("mark").first.inner_text()
                assert "Grushko" in highlighted
                page.screenshot(path=str(ARTIFACTS / f"citation-{name}.png"), full_page=True)
                # a document containing <script> shows as text and never runs
                page.locator("#question textarea").fill("Catatan redaksi tebal selesai")
                page.locator("#question textarea").press("Enter")
                page.wait_for_function(
                    "document.querySelectorAll('#chat a[href*=\"#src-2-\"]').length > 0", timeout=60_000
                )
                page.locator('#chat a[href*="#src-2-"]').first.click()
                assert "<script>" in page.locator("#sources").inner_text()
                assert page.evaluate("window.__pwned === undefined") and dialogs == []
                page.screenshot(path=str(ARTIFACTS / f"escaped-{name}.png"), full_page=True)
                page.close()
        finally:
            browser.close()
