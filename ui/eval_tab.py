"""The evaluation tab: run `rag eval`'s retrieval evaluation (rag/tools/evaluation) on the current
index from the page, with a progress bar, and show its report's tables and plots. The report lands
under runs/ as from the command line (report.md, report.json, PNG plots).

A gold set is one of eval/*.jsonl or a generated set under runs/ (`rag eval --generate`; it has its
``.generation.json`` report beside it). One evaluation runs at a time for the whole page, in its own
worker (gradio concurrency group "evaluation"), so answers in the chat never wait for it.
"""

from __future__ import annotations

import base64
import html
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.core.errors import RagError
from rag.pipeline import Pipeline
from rag.settings import REPO_ROOT
from rag.tools.evaluation.evaluate import CONFIGS, EvalRequest, evaluate
from rag.tools.evaluation.generate_run import REPORT_SUFFIX
from rag.tools.evaluation.report import render_markdown
from ui.checks import Rejected, log_rejection, parse_choice
from ui.html import note_html

log = logging.getLogger(__name__)

EVAL_DIR = REPO_ROOT / "eval"
RUNS_DIR = REPO_ROOT / "runs"
DEFAULT_CONFIGS = ("bm25", "dense", "hybrid")  # "langchain" builds a second index with another embedder: slow
Progress = Callable[[float, str], None]


def gold_sets(eval_dir: Path, runs_dir: Path) -> list[tuple[str, str]]:
    """(label, path) of every set the tab offers: eval/*.jsonl by name, then the generated sets under
    runs/ (those with a generation report beside them), newest first."""
    sets = [(f"eval/{p.name}", str(p)) for p in sorted(eval_dir.glob("*.jsonl"))]
    generated = [
        r.with_name(r.name.removesuffix(REPORT_SUFFIX) + ".jsonl") for r in runs_dir.rglob("*" + REPORT_SUFFIX)
    ]
    generated = sorted((p for p in generated if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)
    return sets + [(f"generated: {p.relative_to(runs_dir)}", str(p)) for p in generated]


def report_html(markdown: str) -> str:
    """The report's Markdown as HTML in which nothing from a set or a document is active: raw HTML
    is escaped and Markdown links, images and bare URLs stay text."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table").disable(["link", "image", "autolink"])
    return f'<div class="eval-report">{md.render(markdown)}</div>'


@dataclass(frozen=True)
class EvalOutcome:
    run: dict[str, Any]
    paths: dict[str, Path]
    seconds: float

    @property
    def out_dir(self) -> Path:
        return self.paths["json"].parent

    def plots(self) -> list[tuple[Path, str]]:
        return [(p, name.replace("_", " ")) for name, p in self.paths.items() if p.suffix == ".png"]


class Evaluations:
    """Runs one evaluation at a time; a second request while one runs is refused with a message."""

    def __init__(self, pipeline: Pipeline, runs_dir: Path) -> None:
        self.pipeline = pipeline
        self.runs_dir = runs_dir
        self._lock = threading.Lock()
        self.running = ""  # the set being evaluated, "" when none

    def run(self, gold_set: Path, configs: tuple[str, ...], progress: Progress | None = None) -> EvalOutcome:
        if not self._lock.acquire(blocking=False):
            raise Rejected(
                "busy", f"An evaluation of {self.running} is running; one runs at a time. Try again when it ends."
            )
        try:
            self.running = gold_set.name
            started = time.perf_counter()
            out_dir = self.runs_dir / f"{gold_set.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
            request = EvalRequest(gold_set, None, configs, answers=False, out_dir=out_dir)

            def bar(name: str) -> Callable[[int, int], None]:
                def update(done: int, total: int) -> None:
                    if progress is not None:
                        progress(done / max(total, 1), f"{name}: {done}/{total} questions")

                return update

            run, paths = evaluate(self.pipeline.settings, request, bar, pipeline=self.pipeline)
            return EvalOutcome(run, paths, time.perf_counter() - started)
        finally:
            self.running = ""
            self._lock.release()


def parse_configs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise Rejected("bad_configs", f"choose at least one configuration of {', '.join(CONFIGS)}")
    return tuple(parse_choice(v, "configs", CONFIGS) for v in value)


def plots_html(outcome: EvalOutcome) -> str:
    """The report's PNG plots inline (data: URIs): the page serves no file from runs/, and gradio's
    own file cache is the upload folder, which the page never serves (ui/uploads.py)."""
    figures = []
    for path, caption in outcome.plots():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        figures.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>"
        )
    return f'<div class="eval-plots">{"".join(figures)}</div>'


def outcome_html(outcome: EvalOutcome) -> str:
    files = ", ".join(p.name for p in outcome.paths.values())
    return (
        f'<div class="eval-done">Evaluated {outcome.run["answerable"]} answerable questions of '
        f"{outcome.run['questions']} in {outcome.seconds:.1f} s. Written to "
        f"<code>{html.escape(str(outcome.out_dir))}</code>: {html.escape(files)}</div>"
    )


def build_eval_tab(pipeline: Pipeline) -> None:
    """The tab's components and events, inside the caller's gr.Tabs."""
    import gradio as gr

    evaluations = Evaluations(pipeline, RUNS_DIR)

    def choices() -> list[tuple[str, str]]:
        return gold_sets(EVAL_DIR, RUNS_DIR)

    def run(gold_set: Any, configs: Any, progress=gr.Progress()):
        try:
            chosen = Path(parse_choice(gold_set, "gold_set", [value for _, value in choices()]))
            outcome = evaluations.run(chosen, parse_configs(configs), lambda share, desc: progress(share, desc=desc))
        except Rejected as e:
            log_rejection("evaluation tab", e)
            return note_html("rejected", e.message), "", ""
        except RagError as e:
            log.error("evaluation failed: %s", e)
            return note_html("failed", str(e)), "", ""
        return outcome_html(outcome), report_html(render_markdown(outcome.run)), plots_html(outcome)

    def refresh(current: Any):
        found = choices()
        values = [value for _, value in found]
        return gr.update(choices=found, value=current if current in values else (values[0] if values else None))

    with gr.Tab("Evaluate", id="evaluate", elem_id="eval-tab"):
        gr.Markdown(
            "Retrieval metrics of the current index on a gold set (as `rag eval --set FILE`): one of `eval/`, "
            "or a set generated with `rag eval --generate N`. The report is also written under `runs/`."
        )
        found = choices()
        with gr.Row(equal_height=True):
            gold = gr.Dropdown(
                found, value=found[0][1] if found else None, label="Gold set", scale=4, elem_id="eval-set"
            )
            again = gr.Button("Refresh list", scale=1, elem_id="eval-refresh")
        configs = gr.CheckboxGroup(list(CONFIGS), value=list(DEFAULT_CONFIGS), label="Configurations")
        start = gr.Button("Run evaluation", variant="primary", elem_id="eval-run")
        status = gr.HTML(elem_id="eval-status")
        report = gr.HTML(elem_id="eval-report")
        plots = gr.HTML(elem_id="eval-plots")
        again.click(refresh, [gold], [gold], api_visibility="private", queue=False)
        start.click(
            run,
            [gold, configs],
            [status, report, plots],
            api_visibility="undocumented",
            api_name="evaluate",
            concurrency_limit=2,  # a second one is refused at once with a message, not queued silently
            concurrency_id="evaluation",
        )


CSS = """
.eval-report table { font-size: 0.85em; border-collapse: collapse; display: block; overflow-x: auto; border: none; }
.eval-report td, .eval-report th { border: none; border-bottom: 1px solid var(--border-color-primary);
  padding: 3px 8px; white-space: nowrap; }
.eval-report p, .eval-report li { overflow-wrap: anywhere; }
.eval-report h1 { font-size: 1.3em; margin: 0.6em 0 0.3em; }
.eval-report h2, .eval-report h3 { font-size: 1.1em; margin: 0.6em 0 0.3em; }
.eval-done { font-size: 0.9em; }
.eval-plots { display: flex; flex-wrap: wrap; gap: 12px; }
.eval-plots figure { margin: 0; flex: 1 1 320px; max-width: 660px; }
.eval-plots img { width: 100%; height: auto; border: 1px solid var(--border-color-primary); border-radius: 6px; }
.eval-plots figcaption { font-size: 0.8em; opacity: 0.75; }
"""
