import json
from pathlib import Path

import pytest
from fakes import EchoChatModel, HashingEmbedder

from rag.core.choices import LLMBackend
from rag.core.errors import InputError
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.tools.evaluation.evaluate import EvalRequest, evaluate
from rag.tools.evaluation.runner import summarise

QUESTIONS = [
    {
        "id": "a1",
        "question": "Siapa duta besar Rusia untuk NATO?",
        "language": "id",
        "answerable": True,
        "answers": ["Grushko"],
        "evidence": [{"doc_id": "nato.txt", "quote": "Duta Besar Rusia untuk NATO Alexander Grushko"}],
    },
    {
        "id": "a2",
        "question": "Berapa warga Rusia berperang bersama ISIS?",
        "language": "id",
        "answerable": True,
        "answers": ["500"],
        "evidence": [{"doc_id": "paris.txt", "quote": "Sekitar 500 warga Rusia ikut berperang"}],
    },
    {
        "id": "u1",
        "question": "Siapa juara Piala Dunia?",
        "language": "id",
        "answerable": False,
        "answers": [],
        "evidence": [],
    },
]


@pytest.fixture
def pipeline(corpus_dir: Path, tmp_path: Path, monkeypatch) -> Pipeline:
    settings = Settings(
        corpus_dir=corpus_dir,
        index_dir=tmp_path / "index",
        cache_dir=tmp_path / "cache",
        k=3,
        chunk_tokens=40,
        min_evidence=0.05,
    ).validated()
    made = Pipeline(settings, embedder=HashingEmbedder(), chat_models={LLMBackend.LOCAL: EchoChatModel()})
    from rag.models.tiktoken_provision import provision_tiktoken

    provision_tiktoken(tmp_path / "cache" / "tiktoken")
    monkeypatch.setattr("rag.tools.evaluation.evaluate.Pipeline", lambda s: made)
    return made


def write_set(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_runner_end_to_end_on_a_tiny_set(pipeline: Pipeline, tmp_path: Path, monkeypatch):
    secret = "sk-never-written-4f2a9c"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    eval_set = write_set(tmp_path / "tiny.jsonl", QUESTIONS)
    request = EvalRequest(eval_set, None, ("bm25", "dense", "hybrid"), answers=True, out_dir=tmp_path / "out")
    run, paths = evaluate(pipeline.settings, request)
    assert {p.name for p in paths.values()} == {"report.json", "report.md", "recall_at_k.png", "latency.png"}
    assert run["questions"] == 3 and run["answerable"] == 2
    bm25 = next(r for r in run["retrieval"] if r["name"] == "bm25")
    assert bm25["metrics"]["recall@10"] == 1.0  # both gold quotes share words with their questions
    assert len(bm25["per_question"]) == 2
    summary = run["answers"]["summary"]
    assert summary["questions"] == 3 and summary["citations_resolving"] == 1.0
    saved = json.loads(paths["json"].read_text())
    assert saved["answers"]["rows"][0]["qid"] == "a1"
    assert "| bm25 |" in paths["markdown"].read_text()
    # secrets come from the environment and land in no report, manifest or index file
    for folder in (tmp_path / "out", pipeline.settings.index_dir):
        for path in folder.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path


def test_an_eval_set_with_a_quote_not_in_the_documents_is_rejected(pipeline: Pipeline, tmp_path: Path):
    bad = [dict(QUESTIONS[0], evidence=[{"doc_id": "nato.txt", "quote": "Grushko tidak pernah berkata ini"}])]
    with pytest.raises(InputError, match="quote not found"):
        evaluate(
            pipeline.settings, EvalRequest(write_set(tmp_path / "bad.jsonl", bad), None, ("bm25",), False, tmp_path)
        )


def test_the_shipped_eval_set_is_valid():
    from rag.settings import REPO_ROOT
    from rag.steps.corpus import load_corpus
    from rag.tools.evaluation.evalset import load_eval_set

    documents = {d.doc_id: d for d in load_corpus(REPO_ROOT / "corpus").documents}
    questions = load_eval_set(REPO_ROOT / "eval" / "questions.jsonl", documents)
    assert len(questions) >= 40
    assert sum(not q.answerable for q in questions) >= 8
    assert {q.language for q in questions} == {"id", "en"}
    assert sum(q.multi_doc for q in questions) >= 3


def test_the_held_out_set_is_valid_and_split():
    from rag.settings import REPO_ROOT
    from rag.steps.corpus import load_corpus
    from rag.tools.evaluation.evalset import load_eval_set

    documents = {d.doc_id: d for d in load_corpus(REPO_ROOT / "corpus").documents}
    questions = load_eval_set(REPO_ROOT / "eval" / "heldout.jsonl", documents)
    test = [q for q in questions if q.split == "test"]
    assert len(questions) >= 60 and {q.split for q in questions} == {"dev", "test"}
    assert sum(not q.answerable for q in test) >= 15
    assert len({q.kind for q in questions}) == 7


def test_split_and_class_breakdown_of_answers(pipeline: Pipeline, tmp_path: Path):
    rows = [dict(QUESTIONS[0], split="dev", **{"class": "entity_role"}), dict(QUESTIONS[2], split="test")]
    request = EvalRequest(write_set(tmp_path / "s.jsonl", rows), None, ("bm25",), True, tmp_path / "o", split="dev")
    run, _ = evaluate(pipeline.settings, request)
    summary = run["answers"]["summary"]
    assert summary["questions"] == 1 and set(summary["by_class"]) == {"entity_role"}


def test_benchmark_answers_ours_and_the_textbook_chain_on_one_split(pipeline: Pipeline, tmp_path: Path):
    bench = tmp_path / "tinybench"
    bench.mkdir()
    (bench / "corpus.jsonl").write_text('{"doc_id": "nato.txt", "text": "x"}\n', encoding="utf-8")
    queries = [
        {
            "qid": "q1",
            "question": "Siapa duta besar Rusia untuk NATO?",
            "answers": ["Grushko"],
            "gold_doc_ids": ["nato.txt"],
        },
        {
            "qid": "q2",
            "question": "Berapa warga Rusia berperang bersama ISIS?",
            "answers": ["500"],
            "gold_doc_ids": ["paris.txt"],
        },
    ]
    write_set(bench / "queries.jsonl", queries)
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps({"dev": ["q1"], "test": ["q2"]}), encoding="utf-8")
    lookalikes = write_set(
        tmp_path / "look.jsonl",
        [
            {
                "id": "l1",
                "question": "Berapa warga Jerman berperang bersama ISIS?",
                "split": "test",
                "edit": "entity_swap",
            }
        ],
    )
    request = EvalRequest(
        None,
        bench,
        ("bm25",),
        True,
        tmp_path / "o",
        split="test",
        chains=("ours", "langchain"),
        sample=sample,
        lookalikes=lookalikes,
    )
    run, paths = evaluate(pipeline.settings, request)
    for key in ("answers", "answers_langchain"):
        summary = run[key]["summary"]
        assert summary["questions"] == 2 and summary["answerable"] == 1
        assert set(summary["by_class"]) == {"original", "lookalike:entity_swap"}
    assert "textbook LangChain chain" in paths["markdown"].read_text()


def test_replay_checks_the_recorded_replies_again_without_the_model(pipeline: Pipeline, tmp_path: Path):
    eval_set = write_set(tmp_path / "tiny.jsonl", QUESTIONS)
    first, paths = evaluate(pipeline.settings, EvalRequest(eval_set, None, ("bm25",), True, tmp_path / "live"))
    live = {r["qid"]: r for r in first["answers"]["rows"]}
    assert live["u1"]["decline_reason"].startswith("evidence")  # the gate declines it: no reply recorded
    recorded = json.loads(paths["json"].read_text())
    for row in recorded["answers"]["rows"]:
        if row["qid"] == "a1":  # as if the model had invented a number this time
            row["raw"], row["decline_reason"] = "Rusia mengirim 9999 diplomat ke NATO [1].", ""
        if row["qid"] == "a2":  # as if the recorded run had declined it before calling the model
            row["raw"], row["decline_reason"] = "", "evidence: closest passage too far"
    report = tmp_path / "recorded.json"
    report.write_text(json.dumps(recorded), encoding="utf-8")
    chat = pipeline.chat_model().chat
    calls = len(chat.prompts)

    request = EvalRequest(eval_set, None, ("bm25",), True, tmp_path / "replay", replay=report)
    run, paths = evaluate(pipeline.settings, request)

    rows = {r["qid"]: r for r in run["answers"]["rows"]}
    assert rows["a1"]["raw"].startswith("Rusia mengirim 9999")  # checked again, not regenerated
    assert rows["a1"]["declined"] and rows["a1"]["decline_reason"] == "grounding"  # 9999 is in no passage
    assert rows["a2"]["raw"] == live["a2"]["raw"]  # no reply recorded and today's gate passes: the model answered
    assert len(chat.prompts) == calls + 1
    assert {k: run["replay"][k] for k in ("replayed", "generated", "gated")} == {
        "replayed": 1,
        "generated": 1,
        "gated": 1,
    }
    assert "Replayed:" in paths["markdown"].read_text()


def test_replay_refuses_replies_written_for_other_prompts(pipeline: Pipeline, tmp_path: Path):
    eval_set = write_set(tmp_path / "tiny.jsonl", QUESTIONS[:1])
    _, paths = evaluate(pipeline.settings, EvalRequest(eval_set, None, ("bm25",), True, tmp_path / "live"))
    recorded = json.loads(paths["json"].read_text())
    recorded["prompt_version"] = "0123456789ab"
    report = tmp_path / "recorded.json"
    report.write_text(json.dumps(recorded), encoding="utf-8")
    with pytest.raises(InputError, match="prompt version 0123456789ab"):
        evaluate(pipeline.settings, EvalRequest(eval_set, None, ("bm25",), True, tmp_path / "r", replay=report))
    (tmp_path / "not-a-run.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match="not a report of an answer run"):
        bad = EvalRequest(eval_set, None, ("bm25",), True, tmp_path / "r", replay=tmp_path / "not-a-run.json")
        evaluate(pipeline.settings, bad)
    with pytest.raises(InputError, match="goes with --answers"):
        evaluate(pipeline.settings, EvalRequest(eval_set, None, ("bm25",), False, tmp_path / "r", replay=report))


def test_the_summary_tells_what_the_checks_cost_and_what_they_let_through():
    """Right replies declined, wrong ones kept: against the model's own replies before the checks."""

    def row(answerable: bool, reply_correct: bool, declined: bool, correct: bool) -> dict:
        timings = {"total_ms": 1.0}
        return {
            "answerable": answerable,
            "reply_correct": reply_correct,
            "declined": declined,
            "correct": correct,
            **{"answer_language": "en", "language": "en", "markers": 0, "citation_on_gold": None},
            "timings": timings,
        }

    rows = [
        row(True, True, False, True),  # kept, right
        row(True, True, True, False),  # right reply declined by a check
        row(True, False, False, False),  # wrong reply let through
        row(True, False, True, False),  # wrong reply declined
        row(False, False, True, False),
    ]
    summary = summarise(rows)
    assert summary["reply_correct_answerable"] == 0.5 and summary["correct_answerable"] == 0.25
    assert summary["checks_declined_right_reply"] == 0.25 and summary["checks_kept_wrong_reply"] == 0.25
