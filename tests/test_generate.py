"""Generated test sets: the filters on written examples, the passage sample, and a whole generation
with a scripted chat model whose set `rag eval` then runs on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import HashingEmbedder, ScriptedChatModel

from rag.core.choices import LLMBackend
from rag.core.errors import ConfigError, LLMError
from rag.core.types import Chunk
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.steps.corpus import load_corpus
from rag.tools.evaluation.evalset import load_eval_set
from rag.tools.evaluation.evaluate import EvalRequest, evaluate
from rag.tools.evaluation.generate import (
    GenerateParams,
    load_generation_prompts,
    passages_of,
    plan_tasks,
    sample_passages,
)
from rag.tools.evaluation.generate_run import GenerateRequest, generate_set, report_path
from rag.tools.evaluation.question_filters import (
    Candidate,
    FilterParams,
    Reply,
    find_span,
    first_failure,
    gives_away,
    is_copy,
    longest_common_run,
    name_phrases,
    not_standalone,
    parse_reply,
)

PASSAGE = (
    "Menteri Luar Negeri Rusia Sergey Lavrov bertemu Menteri Luar Negeri AS John Kerry di Paris pada Selasa. "
    "Pertemuan itu berlangsung selama tiga jam dan membahas altruismenya."
)
PARAMS = FilterParams()


def judge(question: str, answer: str = "tiga jam", language: str = "id", *, answerable: bool = True, seen=()):
    names = frozenset({"lavrov", "kerry", "paris"})
    return first_failure(Candidate(question, answer, language, PASSAGE, answerable, names), set(seen), PARAMS)


def test_replies_are_read_with_or_without_labels():
    assert parse_reply('**Answer:** "tiga jam".\n**Question:** Berapa lama?') == Reply("Berapa lama?", "tiga jam")
    assert parse_reply("Pertanyaan: Siapa dia?\nJawaban: Lavrov") == Reply("Siapa dia?", "Lavrov")
    assert parse_reply("Here it is.\nWhere did Kerry meet Lavrov?\nMore.") == Reply("Where did Kerry meet Lavrov?", "")
    assert parse_reply("I cannot do that.") == Reply("", "")


def test_a_long_run_of_the_passages_words_is_a_copy():
    assert longest_common_run(["a", "b", "c", "d"], ["x", "b", "c", "d", "e"]) == 3
    copied = "Sergey Lavrov bertemu Menteri Luar Negeri AS John Kerry di mana?"  # 9 words in a row
    assert is_copy(copied, PASSAGE, PARAMS)
    assert is_copy("Pertemuan itu berlangsung selama?", PASSAGE, PARAMS)  # 4 words, all of the question
    assert not is_copy("Berapa lama Lavrov dan Kerry bertemu di Paris?", PASSAGE, PARAMS)
    assert judge(copied, answer="Paris") == "copy"


def test_the_answer_must_be_whole_words_of_the_passage_and_short():
    assert PASSAGE[slice(*find_span(PASSAGE, "TIGA  jam"))] == "tiga jam"  # case and spacing aside
    assert find_span(PASSAGE, "altruism") is None  # part of "altruismenya" is no answer
    assert find_span(PASSAGE, "empat jam") is None and find_span(PASSAGE, " ") is None
    assert judge("Berapa lama Lavrov dan Kerry bertemu di Paris?", answer="empat jam") == "answer_span"
    long = "Menteri Luar Negeri Rusia Sergey Lavrov bertemu Menteri Luar Negeri AS John Kerry"
    assert judge("Siapa yang bertemu di Paris pada hari Selasa?", answer=long) == "answer_span"  # 13 words
    assert judge("Apa yang terjadi di Paris pada Selasa?", answer="itu") == "answer_span"  # only a stop word


def test_a_question_that_holds_its_answer_gives_it_away():
    assert gives_away("Apakah pertemuan di Paris berlangsung tiga jam?", "tiga jam")
    assert not gives_away("Berapa lama pertemuan di Paris?", "tiga jam")
    assert judge("Apakah Lavrov bertemu Kerry selama tiga jam?") == "gives_away"


def test_questions_that_need_the_passage_are_not_standalone():
    for question in (
        "Apa isi artikel ini?",
        "Berapa lama pertemuan tersebut berlangsung?",
        "According to the passage, how long was the meeting?",
        "What is the main topic of this text?",
        "How long did he talk?",  # a pronoun and no name it could stand for
    ):
        assert not_standalone(question), question
    assert not_standalone("How long did Kerry say he talked to Lavrov?") == ""
    assert judge("Berapa lama pertemuan tersebut?") == "standalone"
    # an answerable question must point at one passage of a whole corpus: a name or a number
    assert not_standalone("Who is the director general of air defence?", specific=True) == "no name or number"
    assert not_standalone("Who was director general of air defence in 2005?", specific=True) == ""
    assert judge("Berapa lama pertemuan itu berlangsung?") == "standalone"
    assert judge("Berapa gaji seorang menteri?", "", answerable=False) == "names"  # look-alikes: their own rule


def test_the_question_must_be_in_the_language_asked_for():
    assert judge("How long did Lavrov and Kerry meet in Paris?") == "language"
    assert judge("How long did Lavrov and Kerry meet in Paris?", language="en") is None
    assert judge("Berapa lama Lavrov dan Kerry bertemu di Paris?") is None


def test_look_alikes_must_name_someone_or_somewhere_of_the_document():
    assert judge("Berapa gaji seorang menteri setiap bulan?", "", answerable=False) == "names"
    assert judge("Berapa gaji Lavrov setiap bulan?", "", answerable=False) is None
    assert judge("", "", answerable=False) == "format"
    assert judge("Berapa lama Lavrov di Paris?", answer="") == "format"  # an answerable one needs its answer


def test_a_question_kept_once_is_a_duplicate_the_second_time():
    question = "Berapa lama Lavrov dan Kerry bertemu di Paris?"
    assert judge(question, seen={"berapa lama lavrov dan kerry bertemu di paris"}) == "duplicate"


def test_names_are_capitalised_runs_that_do_not_open_a_sentence():
    found = name_phrases(PASSAGE + " Kerry berkata.")
    assert found[0].endswith("Sergey Lavrov") and "Paris" in found
    assert "Pertemuan" not in found


def _chunks(doc_id: str, n: int) -> list[Chunk]:
    text = "kata " * 20
    return [Chunk(f"{doc_id}#{i}", doc_id, i, i + 1, text) for i in range(n)]


def test_the_sample_is_spread_over_documents_and_fixed_by_the_seed():
    chunks = _chunks("a", 6) + _chunks("b", 1) + _chunks("c", 3) + [Chunk("d#0", "d", 0, 5, "pendek saja")]
    sample = sample_passages(chunks, 5, seed=7, min_words=12)
    assert len(sample) == 5 and {c.doc_id for c in sample} == {"a", "b", "c"}  # d's passage is too short
    assert sorted(c.doc_id for c in sample[:3]) == ["a", "b", "c"]  # one of each before a second of any
    assert sample == sample_passages(chunks, 5, seed=7, min_words=12)
    assert len(sample_passages(chunks, 50, seed=7, min_words=12)) == 10  # all there is


def test_each_passage_gets_each_language_and_a_share_gets_a_look_alike():
    params = GenerateParams(passages=10, languages=("id", "en"), unanswerable_share=0.2)
    tasks = plan_tasks(_chunks("a", 10), params)
    assert sum(t.answerable for t in tasks) == 20 and sum(not t.answerable for t in tasks) == 4
    assert len({t.qid for t in tasks}) == len(tasks)
    with pytest.raises(ConfigError, match="choose from id, en"):
        GenerateParams(passages=3, languages=("fr",)).validated()


def test_the_prompt_templates_use_exactly_their_variables(tmp_path: Path):
    prompts = load_generation_prompts(Settings().prompts_dir)
    system, user = prompts.messages("question", passage="P.", language_name="English")
    assert "Answer:" in system.text and user.text == "Passage: P.\nLanguage: English\n"
    for name, text in prompts.texts.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "generate.lookalike.user.txt").write_text("Passage: {passage} {language_name}", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected exactly"):
        load_generation_prompts(tmp_path)


class FailingScriptedModel(ScriptedChatModel):
    """A scripted reply of "FAIL" is a failed model call."""

    def _next(self, messages):
        reply = super()._next(messages)
        if reply == "FAIL":
            raise LLMError("the model is gone")
        if reply == "CTRL-C":
            raise KeyboardInterrupt
        return reply


@pytest.fixture
def setup(corpus_dir: Path, tmp_path: Path):
    settings = Settings(
        corpus_dir=corpus_dir, index_dir=tmp_path / "index", cache_dir=tmp_path / "cache", chunk_tokens=40
    ).validated()
    chat = FailingScriptedModel()
    pipeline = Pipeline(settings, embedder=HashingEmbedder(), chat_models={LLMBackend.LOCAL: chat})
    documents = load_corpus(corpus_dir).documents
    params = GenerateParams(passages=4, languages=("id", "en"), seed=3, unanswerable_share=0.5)
    passages = passages_of(documents, pipeline.embedder.count_tokens, chunk_tokens=40, overlap_sentences=1)
    tasks = plan_tasks(sample_passages(passages, 4, 3, params.min_passage_words), params)
    return settings, chat, pipeline, params, tasks


def _kept_reply(task, n: int) -> str:
    """A reply every filter passes: a short span of the passage as the answer, a question of its own."""
    answer = " ".join(task.chunk.text.split()[:2]).strip(".,")
    name = name_phrases(task.chunk.text)[0] if not task.answerable else ""
    if task.language == "id":
        question = f"Berapa gaji {name} pada tahun 19{n:02d}?" if name else f"Apa kabar pembuka laporan nomor {n}?"
    else:
        question = f"How much did {name} earn in 19{n:02d}?" if name else f"What opens report number {n}?"
    return f"Answer: {answer}\nQuestion: {question}" if task.answerable else f"Question: {question}"


def test_a_generated_set_keeps_what_the_filters_pass_and_evaluates(setup, tmp_path: Path):
    settings, chat, pipeline, params, tasks = setup
    assert len(tasks) == 12 and [t.answerable for t in tasks].count(False) == 4
    answerable = [i for i, t in enumerate(tasks) if t.answerable and t.language == "en"]
    same_language = [i for i, t in enumerate(tasks) if t.answerable and t.language == "id"]
    broken = {  # task index -> (reply, the filter that must drop it)
        answerable[0]: ("FAIL", "llm_error"),
        answerable[1]: ("Sorry, I cannot do that.", "format"),
        answerable[2]: (
            "Answer: empat hari\nQuestion: How long did the World Cup final in Brazil last?",
            "answer_span",
        ),
        same_language[-1]: (_kept_reply(tasks[same_language[-1]], same_language[-2]), "duplicate"),
    }
    chat.replies = [broken[i][0] if i in broken else _kept_reply(t, i) for i, t in enumerate(tasks)]
    out = tmp_path / "runs" / "gen.jsonl"
    report = generate_set(settings, GenerateRequest(settings.corpus_dir, out, params), pipeline=pipeline)

    assert report["complete"] and report["tasks_done"] == 12 and not chat.replies
    total = report["funnel"][-1]
    assert (total["generated"], total["llm_error"], total["format"], total["answer_span"], total["duplicate"]) == (
        12,
        1,
        1,
        1,
        1,
    )
    dropped = {d["id"]: d["filter"] for d in report["dropped"]}
    assert sorted(dropped.values()) == sorted(f for _, f in broken.values())
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == total["kept"] == report["kept"] == 12 - len(broken)
    assert json.loads(report_path(out).read_text())["prompt_version"] == report["prompt_version"]
    # the model saw the passage and the language it must write in
    first = chat.prompts[0][-1].text
    assert " ".join(tasks[0].chunk.text.split()) in first and "Language: Indonesian" in first

    documents = {d.doc_id: d for d in load_corpus(settings.corpus_dir).documents}
    for r in records:
        if r["answerable"]:
            (evidence,) = r["evidence"]
            assert evidence["quote"] in documents[evidence["doc_id"]].text  # the passage is the evidence
            assert r["answers"][0] in evidence["quote"]
    questions = load_eval_set(out, documents)
    assert {q.kind for q in questions} == {"generated", "lookalike"}
    # `rag eval --set` runs on it
    pipeline.ingest()
    request = EvalRequest(out, None, ("bm25", "hybrid"), False, tmp_path / "eval")
    run, paths = evaluate(settings, request, pipeline=pipeline)
    assert run["answerable"] == sum(r["answerable"] for r in records) > 0
    assert 0.0 <= run["retrieval"][0]["metrics"]["recall@10"] <= 1.0 and paths["markdown"].is_file()


def test_a_generation_that_keeps_failing_stops_and_says_it_is_incomplete(setup, tmp_path: Path):
    settings, chat, pipeline, params, tasks = setup
    chat.replies = [_kept_reply(tasks[0], 0), "FAIL", "FAIL", "FAIL"]
    out = tmp_path / "gen.jsonl"
    with pytest.raises(LLMError, match="gone"):
        generate_set(settings, GenerateRequest(settings.corpus_dir, out, params), pipeline=pipeline)
    report = json.loads(report_path(out).read_text())
    assert not report["complete"] and report["tasks_done"] == 3 and report["kept"] == 1
    assert len(out.read_text().splitlines()) == 1  # what was kept before the failure stays


def test_a_generation_stopped_with_ctrl_c_keeps_what_it_wrote(setup, tmp_path: Path):
    settings, chat, pipeline, params, tasks = setup
    chat.replies = [_kept_reply(tasks[0], 0), _kept_reply(tasks[1], 1), "CTRL-C"]
    out = tmp_path / "gen.jsonl"
    with pytest.raises(KeyboardInterrupt):
        generate_set(settings, GenerateRequest(settings.corpus_dir, out, params), pipeline=pipeline)
    report = json.loads(report_path(out).read_text())
    assert not report["complete"] and report["tasks_done"] == 2 and report["kept"] == 2
    assert len(out.read_text().splitlines()) == 2


def test_the_cli_refuses_a_corpus_without_generate(tmp_path: Path):
    from rag.cli.main import main

    assert main(["eval", "--corpus", str(tmp_path)]) == 2
    assert main(["eval", "--generate", "3", "--set", str(tmp_path / "x.jsonl")]) == 2


def test_a_set_runs_on_a_benchmarks_corpus_and_index(tmp_path: Path, monkeypatch):
    """`rag eval --bench DIR --set FILE`: the set's questions on the benchmark's corpus and its cached
    index, judged per document as the benchmark's own questions are."""
    bench = tmp_path / "minibench"
    bench.mkdir()
    docs = {"b-1": "Kapal perusak AS Donald Cook berlayar di Laut Baltik.", "b-2": "Harga beras naik di Jakarta."}
    (bench / "corpus.jsonl").write_text("".join(json.dumps({"doc_id": k, "text": v}) + "\n" for k, v in docs.items()))
    (bench / "queries.jsonl").write_text(json.dumps({"qid": "q1", "question": "Di mana harga beras naik?",
                                                     "answers": ["Jakarta"], "gold_doc_ids": ["b-2"]}) + "\n")  # fmt: skip
    gold = tmp_path / "generated.jsonl"
    record = {"id": "gen-0001-en", "question": "Where did the destroyer Donald Cook sail?", "language": "en",
              "answerable": True, "answers": ["Laut Baltik"],
              "evidence": [{"doc_id": "b-1", "quote": docs["b-1"]}]}  # fmt: skip
    gold.write_text(json.dumps(record) + "\n")
    monkeypatch.setattr("rag.tools.evaluation.evaluate.Pipeline", lambda s: Pipeline(s, embedder=HashingEmbedder()))
    settings = Settings(cache_dir=tmp_path / "cache", index_dir=tmp_path / "unused").validated()
    run, _ = evaluate(settings, EvalRequest(gold, bench, ("bm25",), False, tmp_path / "out"))
    assert run["name"] == "generated" and run["questions"] == 1
    assert run["index_dir"] == str(tmp_path / "cache" / "bench-index" / "minibench")
    (row,) = run["retrieval"][0]["per_question"]
    assert row["qid"] == "gen-0001-en" and row["first_relevant_rank"] == 1
    assert not (tmp_path / "unused").exists()  # the configured index is left alone
