"""The retrieval-testing and evaluation tabs: the functions behind them, then the page's own endpoints
(gradio_client) on a real launch with the hashing embedder and an echoing chat model."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from fakes import EchoChatModel, HashingEmbedder

from rag.core.choices import LLMBackend
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.steps.bm25 import Tokenizer
from ui import eval_tab
from ui.checks import Rejected
from ui.eval_tab import Evaluations, gold_sets, report_html
from ui.retrieval_tab import compare, matched_words, search_outputs

HOSTILE = "Catatan redaksi <script>window.__pwned = 1</script> ![status](http://127.0.0.1:9911/x) selesai."
NATO = "Siapa Duta Besar Rusia untuk NATO?"
GOLD = [
    {
        "id": "a1",
        "question": NATO,
        "language": "id",
        "answerable": True,
        "answers": ["Grushko"],
        "evidence": [{"doc_id": "nato.txt", "quote": "Duta Besar Rusia untuk NATO Alexander Grushko"}],
    },
    {
        "id": "a2",
        "question": "Berapa warga Rusia berperang bersama ISIS? ![x](http://127.0.0.1:9911/q) <b>tebal</b>",
        "language": "id",
        "answerable": True,
        "answers": ["500"],
        "evidence": [{"doc_id": "paris.txt", "quote": "Sekitar 500 warga Rusia ikut berperang"}],
    },
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    from conftest import ARTICLES

    root = tmp_path_factory.mktemp("tabs")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in {**ARTICLES, "hostile.txt": HOSTILE}.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = Settings(
        corpus_dir=corpus,
        index_dir=root / "index",
        cache_dir=root / "cache",
        port=_free_port(),
        k=3,
        chunk_tokens=40,
        min_evidence=0.05,
    ).validated()
    made = Pipeline(settings, embedder=HashingEmbedder(), chat_models={LLMBackend.LOCAL: EchoChatModel()})
    made.ingest()
    from rag.models.tiktoken_provision import provision_tiktoken

    provision_tiktoken(root / "cache" / "tiktoken")  # the echo model is not local: budgets use tiktoken
    return made


@pytest.fixture
def folders(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    eval_dir, runs_dir = tmp_path / "eval", tmp_path / "runs"
    eval_dir.mkdir()
    (eval_dir / "gold.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GOLD), encoding="utf-8")
    monkeypatch.setattr(eval_tab, "EVAL_DIR", eval_dir)
    monkeypatch.setattr(eval_tab, "RUNS_DIR", runs_dir)
    return eval_dir, runs_dir


def test_the_three_methods_side_by_side_with_every_score(pipeline: Pipeline):
    comparison = compare(pipeline, NATO, 3)
    assert [c.mode.value for c in comparison.columns] == ["bm25", "dense", "hybrid"]
    for column in comparison.columns:
        assert 1 <= len(column.retrieval.hits) <= 3 and column.retrieval.mode == column.mode
        assert all("cosine" in h.details for h in column.retrieval.hits)  # BM25's hits too: one shared vector
    bm25 = comparison.columns[0].retrieval.hits
    assert bm25[0].chunk.doc_id == "nato.txt" and "bm25_rank" in bm25[0].details
    assert {"nato", "rusia", "duta"} <= comparison.matched and "untuk" not in comparison.matched  # a stop word
    summary, *columns = search_outputs(pipeline, NATO, 3)
    assert 'id="src-try-bm25-1"' in columns[0] and 'id="src-try-hybrid-1"' in columns[2]
    assert '<mark class="match">NATO</mark>' in columns[0] and "<b>dense " in columns[1]
    assert "cosine " in columns[0] and "<b>hybrid " in columns[2] and "dense " in columns[2] and "bm25 " in columns[2]
    assert "nato" in summary


def test_matched_words_are_those_bm25_matches():
    stemmed = Tokenizer(stem=True, stopwords=True)
    assert matched_words(stemmed, "pertemuan di Paris", ["Lavrov bertemu di Paris."]) == {"bertemu", "paris"}
    plain = Tokenizer(stem=False, stopwords=True)
    assert matched_words(plain, "pertemuan di Paris", ["Lavrov bertemu di Paris."]) == {"paris"}


def test_document_text_stays_text_in_the_retrieval_tab(pipeline: Pipeline):
    _, *columns = search_outputs(pipeline, "Catatan redaksi status selesai", 5)
    page = "".join(columns)
    assert "hostile.txt" in page and "&lt;script&gt;" in page
    assert "<script" not in page and "<img" not in page and "<a " not in page


@pytest.mark.parametrize(
    ("question", "k", "fragment"),
    [("", 3, "question"), ("x" * 5000, 3, "characters"), (NATO, 0, "from 1 to 50"), (NATO, 51, "out of range"),
     (NATO, 2.5, "whole number"), (NATO, "3", "not a number")],
)  # fmt: skip
def test_bad_inputs_are_refused_with_the_products_message(pipeline: Pipeline, question, k, fragment):
    summary, *columns = search_outputs(pipeline, question, k)
    assert 'class="note rejected"' in summary and fragment in summary and columns == ["", "", ""]
    with pytest.raises(Rejected):
        compare(pipeline, question, k)


def test_the_tab_offers_the_eval_sets_and_the_generated_ones(tmp_path: Path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "questions.jsonl").write_text("{}\n")
    generated = tmp_path / "runs" / "generated"
    generated.mkdir(parents=True)
    (generated / "mine.jsonl").write_text("{}\n")
    (generated / "mine.generation.json").write_text("{}\n")
    (generated / "other.jsonl").write_text("{}\n")  # no generation report: not a gold set
    found = gold_sets(tmp_path / "eval", tmp_path / "runs")
    assert [label for label, _ in found] == ["eval/questions.jsonl", "generated: generated/mine.jsonl"]


def test_an_evaluation_writes_the_report_and_shows_nothing_active(pipeline: Pipeline, folders):
    eval_dir, runs_dir = folders
    seen: list[float] = []
    outcome = Evaluations(pipeline, runs_dir).run(
        eval_dir / "gold.jsonl", ("bm25", "hybrid"), lambda s, _: seen.append(s)
    )
    assert {p.name for p in outcome.paths.values()} == {"report.json", "report.md", "recall_at_k.png", "latency.png"}
    assert outcome.out_dir.parent == runs_dir and len(outcome.plots()) == 2
    assert seen and seen[-1] == 1.0  # the progress bar reached its end
    assert outcome.run["ingest_seconds"] is None  # the current index as it is
    from rag.tools.evaluation.report import render_markdown

    shown = report_html(render_markdown(outcome.run))
    assert "<table>" in shown and "| bm25 |" not in shown and "<td>bm25</td>" in shown
    assert "<img" not in shown and "<a " not in shown and "<b>tebal" not in shown


def test_one_evaluation_at_a_time_and_answers_never_wait_for_it(pipeline: Pipeline, folders):
    eval_dir, runs_dir = folders
    evaluations = Evaluations(pipeline, runs_dir)
    entered, release = threading.Event(), threading.Event()

    def hold(share: float, _: str) -> None:
        entered.set()
        assert release.wait(30)

    first = threading.Thread(target=evaluations.run, args=(eval_dir / "gold.jsonl", ("bm25",), hold))
    first.start()
    try:
        assert entered.wait(30)
        with pytest.raises(Rejected, match="one runs at a time"):
            evaluations.run(eval_dir / "gold.jsonl", ("bm25",))
        started = time.monotonic()
        answer = pipeline.answerer().answer(NATO)  # while the evaluation is in the middle of its run
        assert not answer.declined and time.monotonic() - started < 10
    finally:
        release.set()
        first.join(30)
    assert evaluations.running == "" and len(list(runs_dir.glob("gold-*/report.md"))) == 1


def test_the_page_serves_both_tabs_and_chat_answers_during_an_evaluation(pipeline: Pipeline, folders, monkeypatch):
    from gradio_client import Client

    from ui.app import launch

    eval_dir, runs_dir = folders
    entered, release = threading.Event(), threading.Event()
    real_evaluate = eval_tab.evaluate

    def held(*args, **kwargs):
        entered.set()
        assert release.wait(60)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(eval_tab, "evaluate", held)
    demo = launch(pipeline, block=False)
    try:
        client = Client(demo.local_url, verbose=False)
        summary, bm25, dense, hybrid = client.predict(NATO, 3, api_name="/retrieve")
        assert 'id="src-try-bm25-1"' in bm25 and "Grushko" in hybrid and "cosine" in bm25 and "<b>dense" in dense
        assert "whole number" in client.predict(NATO, 2.5, api_name="/retrieve")[0]  # the product's own check
        assert 'class="note rejected"' in client.predict("   ", 3, api_name="/retrieve")[0]
        job = client.submit(str(eval_dir / "gold.jsonl"), ["bm25", "dense"], api_name="/evaluate")
        assert entered.wait(30)
        started = time.monotonic()
        result = client.predict(NATO, "hybrid", 3, api_name="/ask")  # the chat answers meanwhile
        assert result["citations"] and time.monotonic() - started < 15
        busy = client.predict(str(eval_dir / "gold.jsonl"), ["bm25"], api_name="/evaluate")
        assert "one runs at a time" in busy[0]
        release.set()
        status, report, plots = job.result(timeout=60)
        assert "Written to" in status and str(runs_dir) in status
        assert "<td>dense</td>" in report and plots.count('<img alt="') == 2
        assert plots.count('src="data:image/png;base64,') == 2  # inline: the page serves no file
    finally:
        release.set()
        demo.close()


def test_a_hybrid_hit_shows_the_scores_it_was_fused_from():
    from rag.core.types import Chunk, Hit
    from ui.retrieval_tab import scores_html

    chunk = Chunk("d#0", "d", 0, 1, "x")
    fused = scores_html(Hit(chunk, 0.7, 1, "hybrid", {"bm25": 3.5, "bm25_rank": 2, "cosine": 0.41}))
    assert "<b>hybrid 0.700</b>" in fused and "bm25 3.500 (#2)" in fused and "dense —" in fused
    assert "cosine 0.410" in fused  # not among the dense candidates: its cosine still shows
    both = scores_html(Hit(chunk, 0.9, 1, "hybrid", {"dense": 0.8, "dense_rank": 1, "bm25": 1.0, "bm25_rank": 4,
                                                      "cosine": 0.8}))  # fmt: skip
    assert "dense 0.800 (#1)" in both and "cosine" not in both  # the dense score is the cosine
    lexical = scores_html(Hit(chunk, 2.0, 1, "bm25", {"bm25": 2.0, "bm25_rank": 1, "cosine": 0.3}))
    assert lexical == '<div class="scores"><b>bm25 2.000</b> · cosine 0.300</div>'
