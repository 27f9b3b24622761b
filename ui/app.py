"""The chat page (Gradio Blocks) over rag's Pipeline. `rag serve` calls serve().

Questions retrieve at once, many together; the passages appear as cards before the answer streams;
answers take turns for the model (the pipeline's generation queue; ui/waiting.py) and can be stopped. Every input is checked at the
edge (ui/checks.py) for the page and its API (ui/api.py); uploads are indexed in the background
(ui/uploads.py) while the page keeps answering from the current index.
"""

from __future__ import annotations

import html
import ipaddress
import logging
import os
from contextlib import closing
from pathlib import Path
from typing import Any

from rag.core.choices import LLMBackend, Mode
from rag.core.errors import ConfigError, InputError, RagError
from rag.pipeline import Pipeline
from ui.api import endpoints
from ui.auth import FailureLog, LoginThrottle, read_credentials
from ui.chat import Session, chat_message, stream_reply
from ui.checks import Rejected, log_rejection, parse_request
from ui.eval_tab import CSS as EVAL_CSS
from ui.eval_tab import build_eval_tab
from ui.html import CSS, HEAD, lines_html, note_html, user_html
from ui.retrieval_tab import CSS as RETRIEVAL_CSS
from ui.retrieval_tab import build_retrieval_tab
from ui.uploads import UPLOAD_TYPES, UploadShield, add_uploads

log = logging.getLogger(__name__)

EXAMPLES = [
    "Berapa lama Lavrov dan Kerry bertemu di Paris?",
    "Who is Russia's ambassador to NATO?",
    "Menurut Medvedev, apa yang merusak hubungan Rusia dan Amerika Serikat?",
    "How many Russian troops did Putin order back to their bases?",
    "What is the population of Jakarta?",
]
# questions retrieving or waiting for the model at once (more wait in gradio's queue, without their
# evidence); generation itself is bounded by the pipeline's generation queue, so this only needs to
# cover the readers of a busy page, each with a worker thread of MAX_THREADS
ANSWER_CONCURRENCY = 48
MAX_THREADS = 80  # gradio's worker threads (its default, 40, is shared by every event of the page)
STATUS_EVERY_S = 5.0  # the status line (index generation, indexing progress) refreshes this often
SHOWN_QUESTION_CHARS = 500  # a rejected question is echoed this far


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def gradio_host(host: str) -> str:
    """The address as Gradio builds URLs from it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def llm_choices(pipeline: Pipeline) -> list[tuple[str, str]]:
    """(label, backend) for the configured LLM and, when that is an endpoint, the bundled local one."""
    backends = [pipeline.settings.llm_backend] + [b for b in LLMBackend if b == LLMBackend.LOCAL]
    return [(f"{b.value}: {pipeline.llm_model_for(b)}", b.value) for b in dict.fromkeys(backends)]


def status_html(pipeline: Pipeline, backend: str) -> str:
    index = pipeline.index
    counts = index.manifest.get("counts", {})
    llm = pipeline.llm_model_for(LLMBackend.parse(backend, "llm_backend"))
    parts = [
        f"<b>Index</b> <code>{html.escape(str(index.folder))}</code> · {counts.get('documents', 0)} articles, "
        f"{counts.get('chunks', 0)} passages · <b>Embedder</b> <code>{html.escape(pipeline.settings.embedder)}</code>"
        f" · <b>LLM</b> <code>{html.escape(f'{backend}: {llm}')}</code>"
    ]
    if pipeline.ingest_progress is not None:
        done, total = pipeline.ingest_progress
        parts.append(f"<b>Indexing</b>: {done:,} of {total:,} new passages embedded; answers use the current index")
    if pipeline.index_problem:
        parts.append(
            '<span class="problem"><b>The newest index cannot be used</b> (still answering from the previous one): '
            f"{html.escape(pipeline.index_problem)}</span>"
        )
    return "<br>".join(parts)


def build_app(pipeline: Pipeline):
    import gradio as gr

    settings = pipeline.settings
    choices = llm_choices(pipeline)
    valid_llms = [value for _, value in choices]
    upload_root = Path(gr.utils.get_upload_folder())

    def idle():  # a fresh dict each time: gradio consumes the ones it is given
        return gr.update(submit_btn=True, stop_btn=False)

    def busy():
        return gr.update(value="", submit_btn=False, stop_btn=True)

    def check(question: Any, mode: Any, k: Any, llm: Any):
        return parse_request(
            question, mode, k, llm, max_question_chars=settings.max_question_chars, llm_choices=valid_llms
        )

    def respond(text: str, session: Session, mode: str, k: float, llm: str):
        try:
            request = check(text, mode, k, llm)
        except Rejected as e:
            log_rejection("page", e)
            shown = str(text or "").strip()[:SHOWN_QUESTION_CHARS]
            session.messages += [chat_message("user", user_html(shown))] if shown else []
            session.messages.append(chat_message("assistant", note_html("rejected", e.message)))
            yield gr.update(), session.messages, session, session.panel()
            return
        turn = session.begin(request.question)
        yield busy(), session.messages, session, session.panel()
        try:
            with closing(stream_reply(pipeline, request, session.history, turn)) as replies:
                for reply in replies:
                    if not session.update(reply, turn):
                        return  # stopped meanwhile
                    if reply.answer is not None:
                        session.finish(reply.answer)
                    yield (idle() if reply.answer else busy()), session.messages, session, session.panel()
        except RagError as e:
            (log.info if isinstance(e, InputError) else log.error)("answering failed: %s", e)
            session.finish(bubble=note_html("rejected" if isinstance(e, InputError) else "failed", str(e)))
            yield idle(), session.messages, session, session.panel()

    def stop(session: Session):
        session.finish()  # marks the reply stopped; the cancelled generator closes its AnswerRun
        return idle(), session.messages, session, session.panel()

    def new_conversation():
        session = Session()
        return [], session, session.panel(), gr.update(value="", submit_btn=True, stop_btn=False)

    def add_files(files: list[Any] | None, llm: str, progress=gr.Progress()):
        if not files:
            return lines_html(["Choose .txt, .md, .html or .jsonl files first."]), gr.update(), None
        paths = [f if isinstance(f, str) else f.name for f in files]

        def report(done: int, total: int) -> None:
            progress(done / max(total, 1), desc=f"embedding {done}/{total} passages")

        try:
            outcome = add_uploads(pipeline, paths, upload_root=upload_root, progress=report)
        except RagError as e:
            log.error("adding articles failed: %s", e)
            return lines_html([f"Indexing failed: {e}"]), status_html(pipeline, llm), None
        return lines_html(outcome.lines()), status_html(pipeline, llm), None

    def tick(llm: str):
        pipeline.refresh_index(background=True)  # an ingest by another process is picked up too
        return status_html(pipeline, llm)

    ask, chat = endpoints(pipeline, check, default_llm=valid_llms[0])

    with gr.Blocks(title="Tanya Berita — cited answers from news articles", analytics_enabled=False) as demo:
        session = gr.State(Session())
        gr.Markdown(
            "## Tanya Berita · Ask the news\nAnswers in Indonesian or English from the indexed articles; "
            "every claim cites the passage it came from. Click a **[n]** to open it."
        )
        status = gr.HTML(status_html(pipeline, choices[0][1]), elem_id="status")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Chat", id="chat-tab"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=320):
                        chatbot = gr.Chatbot(
                            label="Chat",
                            height=520,
                            elem_id="chat",
                            sanitize_html=True,
                            render_markdown=False,
                            buttons=[],
                        )
                        with gr.Row():
                            box = gr.Textbox(
                                placeholder="Tanyakan sesuatu tentang artikel… / Ask about the articles…",
                                show_label=False,
                                scale=5,
                                max_length=settings.max_question_chars,
                                elem_id="question",
                                submit_btn=True,
                                stop_btn=False,
                            )
                            clear = gr.Button("New conversation", scale=1, elem_id="new-conversation")
                    with gr.Column(scale=2, min_width=300):  # beside the chat; right under it on a phone
                        gr.Markdown("### Sources")
                        sources = gr.HTML(Session().panel(), elem_id="sources")
                gr.Examples(examples=[[e] for e in EXAMPLES], inputs=[box], label="Examples")
                with gr.Row(equal_height=False):
                    with gr.Accordion("Settings", open=False):
                        mode = gr.Radio(list(Mode.values()), value=settings.mode.value, label="Retrieval mode")
                        k = gr.Slider(1, 10, value=settings.k, step=1, label="Passages retrieved")
                        llm = gr.Dropdown(choices, value=choices[0][1], label="Language model")
                    with gr.Accordion("Add articles", open=False):
                        # no file_types: gradio would refuse the whole batch for one wrong file; each is judged here
                        files = gr.File(file_count="multiple", label=f"Upload files ({', '.join(UPLOAD_TYPES)})")
                        add = gr.Button("Add to index", elem_id="add-files")
                        added = gr.HTML(elem_id="added")
            build_retrieval_tab(pipeline)
            build_eval_tab(pipeline)
        timer = gr.Timer(STATUS_EVERY_S)
        outputs = [box, chatbot, session, sources]
        asked = box.submit(
            respond,
            [box, session, mode, k, llm],
            outputs,
            api_visibility="private",
            concurrency_limit=ANSWER_CONCURRENCY,
            concurrency_id="answers",
            show_progress="minimal",
        )
        box.stop(stop, [session], outputs, cancels=[asked], queue=False, api_visibility="private")
        for fresh in (clear.click, chatbot.clear):
            fresh(new_conversation, None, [chatbot, session, sources, box], cancels=[asked], api_visibility="private")
        add.click(
            add_files,
            [files, llm],
            [added, status, files],
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="ingest",
        )
        llm.change(lambda choice: status_html(pipeline, choice), [llm], [status], api_visibility="private")
        timer.tick(tick, [llm], [status], api_visibility="private", show_progress="hidden", concurrency_limit=None)
        gr.api(ask, api_name="ask", concurrency_limit=ANSWER_CONCURRENCY, concurrency_id="answers")
        gr.api(chat, api_name="chat", concurrency_limit=ANSWER_CONCURRENCY, concurrency_id="answers")
    return demo


def launch(pipeline: Pipeline, *, block: bool = True):
    """Start the server (returns the Blocks once it listens, unless ``block``); refuses a
    non-loopback address without authentication."""
    from starlette.middleware import Middleware

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    settings = pipeline.settings
    credentials = read_credentials(settings.auth, settings.auth_file)
    if not is_loopback(settings.host) and not credentials:
        raise ConfigError(
            f"listening on {settings.host} makes the chat reachable from other machines; set RAG_AUTH=user:password "
            "or --auth-file FILE to require a login, or keep the default 127.0.0.1"
        )
    _ = pipeline.index  # fail before starting the server when the index is unusable
    demo = build_app(pipeline)
    demo.queue(default_concurrency_limit=None, max_size=128)
    import gradio as gr

    demo.launch(
        server_name=gradio_host(settings.host),
        server_port=settings.port,
        auth=credentials or None,
        prevent_thread_lock=not block,
        max_file_size=f"{settings.max_upload_mb}mb",
        max_threads=MAX_THREADS,
        app_kwargs={
            "middleware": [
                Middleware(LoginThrottle, failures=FailureLog()),
                Middleware(UploadShield, upload_root=gr.utils.get_upload_folder()),  # uploads are never served
            ]
        },
        css=CSS + RETRIEVAL_CSS + EVAL_CSS,
        head=HEAD,
        footer_links=["api"],
        show_error=False,
        quiet=not block,
        ssr_mode=False,
    )
    return demo


def serve(pipeline: Pipeline) -> None:
    launch(pipeline, block=True)
