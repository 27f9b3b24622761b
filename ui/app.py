"""The chat page (Gradio Blocks) over rag's Pipeline. `rag serve` calls serve()."""

from __future__ import annotations

import html
import ipaddress
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.core.choices import LLMBackend, Mode
from rag.core.errors import ConfigError, InputError, LLMError, RagError
from rag.core.types import Answer
from rag.pipeline import Pipeline
from rag.steps.answer.answerer import EventKind
from ui.html import CSS, HEAD, answer_markdown, escape_markdown, sources_html, streaming_markdown

log = logging.getLogger(__name__)

EXAMPLES = [
    "Berapa lama Lavrov dan Kerry bertemu di Paris?",
    "Who is Russia's ambassador to NATO?",
    "Menurut Medvedev, apa yang merusak hubungan Rusia dan Amerika Serikat?",
    "How many Russian troops did Putin order back to their bases?",
    "What is the population of Jakarta?",
]
UPLOAD_TYPES = (".txt", ".md", ".html", ".htm", ".jsonl")
UPLOAD_DIR = "uploads"


@dataclass
class Session:
    """Per-browser-tab state: the conversation for follow-ups and the answers for the sources panel."""

    history: list[tuple[str, str]] = field(default_factory=list)
    turns: list[tuple[int, str, Answer]] = field(default_factory=list)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def llm_choices(pipeline: Pipeline) -> list[tuple[str, str]]:
    """(label, backend) for the configured LLM and, when that is an endpoint, the bundled local one."""
    backends = [pipeline.settings.llm_backend] + [b for b in LLMBackend if b == LLMBackend.LOCAL]
    return [(f"{b.value}: {pipeline.llm_model_for(b)}", b.value) for b in dict.fromkeys(backends)]


def status_line(pipeline: Pipeline, backend: str) -> str:
    llm = pipeline.llm_model_for(LLMBackend.parse(backend, "llm_backend"))
    index = pipeline.index
    counts = index.manifest.get("counts", {})
    return (
        f"**Index** `{index.folder}` · {counts.get('documents', 0)} articles, {counts.get('chunks', 0)} passages · "
        f"**Embedder** `{pipeline.settings.embedder}` · **LLM** `{backend}: {llm}`"
    )


def safe_upload_name(name: str) -> str:
    """A file name that cannot leave the upload folder: no directories, only plain characters."""
    base = Path(name.replace("\\", "/")).name
    stem, dot, suffix = base.rpartition(".")
    clean = re.sub(r"[^\w.-]+", "_", stem or suffix).strip("._") or "upload"
    return f"{clean[:80]}{dot}{suffix.lower() if dot else ''}"


def save_uploads(paths: list[str], corpus_dir: Path, max_bytes: int) -> tuple[list[str], list[str]]:
    """Copy accepted files into <corpus>/uploads; returns (saved names, rejection messages)."""
    target_dir = corpus_dir / UPLOAD_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    saved, rejected = [], []
    for path in paths:
        original = Path(path).name
        name = safe_upload_name(original)
        suffix = Path(name).suffix.lower()
        if suffix not in UPLOAD_TYPES:
            rejected.append(f"{original}: type {suffix or '(none)'} is not accepted ({', '.join(UPLOAD_TYPES)})")
            continue
        size = Path(path).stat().st_size
        if size > max_bytes:
            rejected.append(f"{original}: {size:,} bytes is over the {max_bytes:,}-byte limit")
            continue
        target = target_dir / name
        counter = 1
        while target.exists():
            target = target_dir / f"{Path(name).stem}-{counter}{suffix}"
            counter += 1
        if target.resolve().parent != target_dir.resolve():
            rejected.append(f"{original}: unsafe name")
            continue
        shutil.copyfile(path, target)
        saved.append(target.name)
    return saved, rejected


def build_app(pipeline: Pipeline):
    import gradio as gr

    settings = pipeline.settings
    choices = llm_choices(pipeline)
    documents = lambda: pipeline.index.documents  # noqa: E731 - re-read after every ingest

    def respond(message: str, chat: list[dict[str, Any]], session: Session, mode: str, k: float, llm: str):
        chat = list(chat or [])
        question = (message or "").strip()
        if question:
            chat.append({"role": "user", "content": escape_markdown(question)})
        chat.append({"role": "assistant", "content": "…"})
        yield "", chat, session, gr.update()
        partial = ""
        try:
            answer = None
            answerer = pipeline.answerer(mode=mode, k=int(k), backend=llm)
            for event in answerer.stream(message or "", history=session.history):
                if event.kind == EventKind.TOKEN:
                    partial += event.text
                    chat[-1] = {"role": "assistant", "content": streaming_markdown(partial)}
                    yield "", chat, session, gr.update()
                elif event.kind == EventKind.ANSWER:
                    answer = event.answer
            if answer is None:
                raise LLMError("the answer chain ended without an answer")
        except InputError as e:
            chat[-1] = {"role": "assistant", "content": f"**Note:** {escape_markdown(str(e))}"}
            yield "", chat, session, gr.update()
            return
        except RagError as e:
            log.error("answering failed: %s", e)
            chat[-1] = {"role": "assistant", "content": f"**Error:** {escape_markdown(str(e))}"}
            yield "", chat, session, gr.update()
            return
        turn = len(session.turns) + 1
        session.history.append((answer.question, answer.text))
        session.turns.append((turn, answer.question, answer))
        chat[-1] = {"role": "assistant", "content": answer_markdown(answer, turn)}
        yield "", chat, session, sources_html(session.turns, documents())

    def new_conversation():
        return [], Session(), sources_html([], {}), ""

    def add_files(files: list[Any] | None, llm: str, progress=gr.Progress()):
        if not files:
            return "Choose .txt, .md, .html or .jsonl files first.", gr.update()
        paths = [f if isinstance(f, str) else f.name for f in files]
        saved, rejected = save_uploads(paths, settings.corpus_dir, settings.max_upload_mb * 1024 * 1024)
        lines = []
        if saved:
            progress(0, desc="indexing")

            def report(done: int, total: int) -> None:
                progress(done / max(total, 1), desc=f"embedding {done}/{total} passages")

            try:
                result = pipeline.ingest(progress=report)
            except RagError as e:
                return f"Indexing failed: {html.escape(str(e))}", gr.update()
            lines.append(
                f"Added {len(saved)} file(s): {', '.join(saved)}. Embedded {result.embedded_chunks} passages "
                f"in {result.seconds:.1f} s; they are searchable now."
            )
            for s in result.skipped:
                if s.source.startswith(UPLOAD_DIR):
                    lines.append(f"Skipped {s.source}: {s.reason}")
        lines.extend(f"Rejected {r}" for r in rejected)
        return "\n\n".join(escape_markdown(line) for line in lines), status_line(pipeline, llm)

    def ask_api(question: str, mode: str = settings.mode, k: int = settings.k) -> dict:
        """Answer one question; returns the answer, whether it declined, and its citations."""
        return pipeline.answerer(mode=mode, k=int(k)).answer(question).to_json()

    with gr.Blocks(title="Tanya Berita — cited answers from news articles", analytics_enabled=False) as demo:
        session = gr.State(Session())
        gr.Markdown(
            "## Tanya Berita · Ask the news\nAnswers in Indonesian or English from the indexed articles; "
            "every claim cites the passage it came from. Click a **[n]** to open it."
        )
        status = gr.Markdown(status_line(pipeline, choices[0][1]), elem_id="status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(
                    label="Chat", height=520, elem_id="chat", sanitize_html=True, render_markdown=True, buttons=["copy"]
                )
                with gr.Row():
                    box = gr.Textbox(
                        placeholder="Tanyakan sesuatu tentang artikel… / Ask about the articles…",
                        show_label=False,
                        scale=5,
                        max_length=settings.max_question_chars,
                        elem_id="question",
                        submit_btn=True,
                    )
                    clear = gr.Button("New conversation", scale=1, elem_id="new-conversation")
                gr.Examples(examples=[[e] for e in EXAMPLES], inputs=[box], label="Examples")
                with gr.Accordion("Settings", open=False):
                    mode = gr.Radio(list(Mode.values()), value=settings.mode.value, label="Retrieval mode")
                    k = gr.Slider(1, 10, value=settings.k, step=1, label="Passages retrieved")
                    llm = gr.Dropdown(choices, value=choices[0][1], label="Language model")
                with gr.Accordion("Add articles", open=False):
                    files = gr.File(file_count="multiple", file_types=list(UPLOAD_TYPES), label="Upload files")
                    add = gr.Button("Add to index")
                    added = gr.Markdown()
            with gr.Column(scale=2, min_width=300):
                gr.Markdown("### Sources")
                sources = gr.HTML(sources_html([], {}), elem_id="sources")
        outputs = [box, chatbot, session, sources]
        box.submit(respond, [box, chatbot, session, mode, k, llm], outputs, api_name="chat")
        clear.click(new_conversation, None, [chatbot, session, sources, box], api_visibility="private")
        add.click(add_files, [files, llm], [added, status], api_visibility="private")
        llm.change(lambda choice: status_line(pipeline, choice), [llm], [status], api_visibility="private")
        gr.api(ask_api, api_name="ask")
    return demo


def launch(pipeline: Pipeline, *, block: bool = True):
    """Start the server (returns the Blocks once it listens, unless ``block``); refuses a
    non-loopback address without authentication."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    settings = pipeline.settings
    auth = None
    if settings.auth:
        user, sep, password = settings.auth.partition(":")
        if not sep or not user or not password:
            raise ConfigError("auth must look like user:password")
        auth = (user, password)
    if not is_loopback(settings.host) and auth is None:
        raise ConfigError(
            f"listening on {settings.host} makes the chat reachable from other machines; "
            "give --auth user:password (or RAG_AUTH) to require a login, or keep the default 127.0.0.1"
        )
    _ = pipeline.index  # fail before starting the server when the index is unusable
    demo = build_app(pipeline)
    demo.queue(default_concurrency_limit=1, max_size=128)
    demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        auth=auth,
        prevent_thread_lock=not block,
        max_file_size=f"{settings.max_upload_mb}mb",
        css=CSS,
        head=HEAD,
        footer_links=["api"],
        show_error=False,
        quiet=not block,
        ssr_mode=False,
    )
    return demo


def serve(pipeline: Pipeline) -> None:
    launch(pipeline, block=True)
