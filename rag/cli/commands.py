"""The `rag` subcommands: each imports what it needs. Results to stdout, logs and progress to stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rag.cli.exits import EXIT_STALE
from rag.core.errors import InputError, RagError, UsageError


def cmd_models(args, settings) -> int:
    from rag.models.provision import provision
    from rag.pipeline import model_request

    for line in provision(model_request(settings), only=args.only, force=args.rebuild):
        print(line)
    return 0


def _progress_bar(description: str, unit: str = "chunk"):
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=description, unit=unit, file=sys.stderr, disable=None)
        bar["bar"].n = done
        bar["bar"].refresh()
        if done >= total:
            bar["bar"].close()

    return update


def cmd_ingest(args, settings) -> int:
    from rag.pipeline import Pipeline

    pipeline = Pipeline(settings)
    on_ray = settings.ingest_engine == "ray"  # progress comes back per document from Ray
    progress = _progress_bar("embedding on Ray" if on_ray else "embedding", "document" if on_ray else "chunk")
    report = pipeline.ingest(rebuild=args.rebuild, check_only=args.check, progress=progress)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        from rag.cli.terminal import skipped_plain_text

        verb = "would change" if args.check else "changed"
        print(
            f"{report.index_dir}: {report.total_documents} documents, {report.total_chunks} chunks; "
            f"{verb}: +{len(report.added)} ~{len(report.changed)} -{len(report.removed)}; "
            f"embedded {report.embedded_chunks} chunks in {report.seconds:.1f} s"
            + (f" (full build: {report.rebuild_reason})" if report.full_rebuild and not args.check else "")
        )
        if report.skipped:
            print(skipped_plain_text(report.skipped, check=args.check))
    if args.check and report.stale:
        return EXIT_STALE
    return 0


def _questions(args) -> list[str] | Iterator[str]:
    from rag.core.questions import read_questions

    if args.questions and args.question:
        raise UsageError("give either a QUESTION or --questions FILE, not both")
    if args.questions:
        return read_questions(args.questions)
    if args.question is None:
        raise UsageError("give a QUESTION or --questions FILE")
    return [args.question]


def cmd_search(args, settings) -> int:
    from rag.pipeline import Pipeline
    from rag.steps.question import clean_question

    questions = _questions(args)  # usage errors before anything loads
    retriever = Pipeline(settings).retriever
    for question in questions:
        try:
            hits = retriever.search(
                clean_question(question, settings.max_question_chars), settings.k, settings.mode
            ).hits
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

    questions = _questions(args)  # usage errors before anything loads
    ask_questions(Pipeline(settings).answerer(), questions, as_json=args.json)
    return 0


def ask_questions(answerer, questions, *, as_json: bool) -> None:
    """Answer each question: one JSON object a line (timings gain ``evidence_ms``: from the question to
    its retrieved passages), or the passages, the streamed reply and the checked answer."""
    for question in questions:
        if as_json:
            answer, evidence_ms = _answer_timed(answerer, question)
            out = answer.to_json()
            out["timings"]["evidence_ms"] = round(evidence_ms, 1)
            print(json.dumps(out, ensure_ascii=False), flush=True)
        else:
            _stream_to_terminal(answerer, question, [])


def _answer_timed(answerer, question: str):
    """The Answer and the milliseconds from the question to the EVIDENCE event."""
    import time

    from rag.core.errors import LLMError
    from rag.steps.answer.answerer import EventKind

    started = time.perf_counter()
    evidence_ms = 0.0
    for event in answerer.stream(question):
        if event.kind == EventKind.EVIDENCE:
            evidence_ms = (time.perf_counter() - started) * 1000
        elif event.kind == EventKind.ANSWER and event.answer is not None:
            return event.answer, evidence_ms
    raise LLMError("the answer chain ended without an answer")


def _stream_to_terminal(answerer, question: str, history: list[tuple[str, str]], *, stoppable: bool = False):
    """Print the retrieved passages first, then tokens as they come, then the checked answer with its
    sources; returns the Answer. With ``stoppable``, Ctrl-C stops this answer (returns None)."""
    from rag.cli.terminal import answer_plain_text, evidence_plain_text
    from rag.steps.answer.answerer import EventKind

    answer = None
    stream = answerer.stream(question, history=history)
    try:
        for event in stream:
            if event.kind == EventKind.EVIDENCE and event.prepared is not None:
                print(evidence_plain_text(event.prepared), flush=True)
            elif event.kind == EventKind.TOKEN:
                print(event.text, end="", flush=True)
            elif event.kind == EventKind.ANSWER:
                answer = event.answer
    except KeyboardInterrupt:
        stream.close()  # closes the chat model's stream: generation stops here
        if not stoppable:
            raise
        print("\n(stopped)", flush=True)
        return None
    print()
    if answer is not None:
        print(answer_plain_text(answer, passages_listed=True))
    return answer


def cmd_chat(args, settings) -> int:
    from rag.pipeline import Pipeline

    answerer = Pipeline(settings).answerer()
    history: list[tuple[str, str]] = []
    print("Ask about the corpus (Ctrl-C stops an answer; empty line or Ctrl-D to leave).", file=sys.stderr)
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            break
        if not question:
            break
        try:
            answer = _stream_to_terminal(answerer, question, history, stoppable=True)
        except InputError as e:  # a bad question ends nothing: say why and ask again
            print(f"error: {e}", file=sys.stderr)
            continue
        if answer is not None:
            history.append((question, answer.text))
    return 0


def cmd_eval(args, settings) -> int:
    import time

    from rag.settings import REPO_ROOT
    from rag.tools.evaluation.evaluate import EvalRequest, evaluate
    from rag.tools.evaluation.report import render_markdown

    if args.generate is not None:
        return _generate(args, settings)
    if args.compare:
        return _compare(args.compare)
    given = [flag for flag, value in (("--corpus", args.generate_corpus),) if value is not None]
    if given:
        raise UsageError(f"{', '.join(given)} goes with --generate N; to evaluate on another corpus use --bench DIR")
    eval_set = args.eval_set
    if args.bench is None and eval_set is None:
        eval_set = REPO_ROOT / "eval" / "questions.jsonl"
    name = args.bench.name if args.bench else eval_set.stem
    request = EvalRequest(
        eval_set=eval_set,
        bench=args.bench,
        configs=_names(args.configs),
        answers=args.answers,
        out_dir=args.out or REPO_ROOT / "runs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
        split=args.split,
        chains=_names(args.chains or ("ours,langchain" if args.bench and not args.replay else "ours")),
        sample=args.sample,
        lookalikes=args.lookalikes,
        replay=args.replay,
    )
    run, paths = evaluate(settings, request, progress=_progress_bar)
    print(render_markdown(run))
    print(f"report: {paths['markdown']}", file=sys.stderr)
    return 0


def _generate(args, settings) -> int:
    import time

    from rag.settings import REPO_ROOT
    from rag.tools.evaluation.generate import GenerateParams, funnel_markdown
    from rag.tools.evaluation.generate_run import GenerateRequest, generate_set, report_path

    if args.eval_set is not None or args.answers:
        raise UsageError("--generate writes a set; evaluate it afterwards with --set FILE (and --answers)")
    corpus = args.generate_corpus or settings.corpus_dir
    name = corpus.parent.name if corpus.is_file() and corpus.stem == "corpus" else corpus.stem
    out = args.out or REPO_ROOT / "runs" / "generated" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    params = GenerateParams(
        passages=args.generate, languages=_names(args.languages), seed=args.seed, unanswerable_share=args.unanswerable
    )
    try:
        report = generate_set(settings, GenerateRequest(corpus, out, params), _progress_bar("generating", "question"))
    except KeyboardInterrupt:
        print(f"stopped: the questions kept so far are in {out}; see {report_path(out)}", file=sys.stderr)
        raise
    print(funnel_markdown(report["funnel"]))
    per = report["seconds_per_generation"]["median"]
    print(
        f"\n{report['kept']} questions kept of {report['tasks_done']} generated from {report['passages_sampled']} "
        f"passages of {report['documents_sampled']} documents in {report['seconds_total']:.0f} s "
        f"({per} s per generation, median)"
    )
    print(f"set: {out}\nreport: {report_path(out)}", file=sys.stderr)
    return 0


def _names(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def _bench_ingest(args, settings, out: Path) -> None:
    from rag.settings import REPO_ROOT
    from rag.tools.benchmarks.ingest import run

    if args.corpora:
        corpora = [Path(c.strip()) for c in args.corpora.split(",") if c.strip()]
    else:
        facqa = REPO_ROOT.parent / "shared" / "bench" / "facqa"
        corpora = [settings.corpus_dir, *([facqa] if facqa.is_dir() else [])]
    missing = [str(c) for c in corpora if not c.exists()]
    if missing:
        raise InputError(f"no such corpus: {', '.join(missing)}")
    run(settings, corpora, rounds=args.rounds, out=out)


def _bench_search(args, settings, out: Path) -> None:
    from rag.tools.benchmarks.common import questions_from
    from rag.tools.benchmarks.search import run

    run(settings, questions=questions_from(args.questions) if args.questions else None, rounds=args.rounds, out=out)


def _bench_scale(args, settings, out: Path) -> None:
    from rag.settings import REPO_ROOT
    from rag.tools.benchmarks.common import questions_from
    from rag.tools.benchmarks.scale import plot, run

    questions = questions_from(args.questions or REPO_ROOT / "eval" / "questions.jsonl")
    rows = run(settings, _sizes(args), questions=questions, queries=args.queries, out=out)
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)


def _bench_answer(args, settings, out: Path) -> None:
    from rag.tools.benchmarks.answer import run

    run(settings, out=out)


def _bench_curve(args, settings, out: Path) -> None:
    from rag.tools.benchmarks.answer import curve

    curve(settings, answers=args.answers, eval_set=args.questions, split=args.split or "", out=out, plot=args.plot)
    if args.plot:
        print(f"plot: {args.plot}", file=sys.stderr)


def _bench_load(args, settings, out: Path) -> None:
    from rag.tools.benchmarks.load import run

    engines = tuple(e.strip() for e in args.engines.split(",") if e.strip())
    run(settings, engines=engines, clients=args.clients, seconds=args.seconds, questions_file=args.questions, out=out)


def _bench_ann(args, settings, out: Path) -> None:
    from rag.tools.benchmarks.ann import plot, run_on_index

    rows = run_on_index(settings, _sizes(args), queries=args.queries, out=out)
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)


def _bench_backends(args, settings, out: Path) -> None:
    from rag.settings import REPO_ROOT
    from rag.tools.benchmarks.backends import run
    from rag.tools.benchmarks.common import questions_from

    questions = questions_from(args.questions or REPO_ROOT / "eval" / "questions.jsonl")
    run(settings, _sizes(args), questions=questions, queries=args.queries, out=out)


def _bench_engines(args, settings, out: Path) -> None:
    from rag.tools.benchmarks.engines import run

    try:
        workers = [int(w) for w in (args.workers_list or "1,2").split(",") if w.strip()]
    except ValueError as e:
        raise UsageError(f"--workers-list must be comma-separated numbers, got {args.workers_list!r}") from e
    run(settings, settings.corpus_dir, workers, rounds=args.rounds, out=out)


def _sizes(args) -> list[int]:
    try:
        return [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError as e:
        raise UsageError(f"--sizes must be comma-separated numbers of chunks, got {args.sizes!r}") from e


BENCHMARKS: dict[str, Callable[[Any, Any, Path], None]] = {
    "ingest": _bench_ingest,
    "search": _bench_search,
    "answer": _bench_answer,
    "scale": _bench_scale,
    "ann": _bench_ann,
    "backends": _bench_backends,
    "engines": _bench_engines,
    "load": _bench_load,
    "curve": _bench_curve,
}


def cmd_bench(args, settings) -> int:
    import time

    from rag.settings import REPO_ROOT

    out = args.out or REPO_ROOT / "runs" / f"bench-{args.which}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    BENCHMARKS[args.which](args, settings, out)
    print(f"written: {out}", file=sys.stderr)
    return 0


def cmd_serve(args, settings) -> int:
    from rag.pipeline import Pipeline

    try:
        from ui.app import serve
    except ImportError as e:
        raise RagError(f"the chat page needs gradio: {e}; run the README's set-up command") from e
    if args.auth:
        print(
            "warning: --auth puts the password in the process list (`ps`); "
            "use RAG_AUTH=user:password or --auth-file FILE instead",
            file=sys.stderr,
        )
    pipeline = Pipeline(settings)
    if args.no_ingest:  # the index as it is: its passages' sentences are still computed ahead
        _keep_sentences_in_background(pipeline)
    else:
        _ingest_for_serving(pipeline)
    serve(pipeline)
    return 0


def _compare(paths: list[Path]) -> int:
    from rag.tools.evaluation.rankings import compare_rankings, render_comparison

    reports = []
    for path in paths:
        file = path / "report.json" if path.is_dir() else path
        try:
            reports.append(json.loads(file.read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read the report {file}: {e}") from e
    comparison = compare_rankings(reports[0], reports[1])
    first, second = (p if p.is_dir() else p.parent for p in paths)
    print(render_comparison(comparison, (first.name, second.name)))
    return 0


def _keep_sentences(pipeline) -> None:
    import time

    from rag.pipeline import KEEP_SENTENCES_MAX_CHUNKS, SENTENCES_KEPT_LOG

    started = time.perf_counter()
    try:
        kept = pipeline.keep_passage_sentences()
        took = time.perf_counter() - started
        later = "" if kept else f" (an index over {KEEP_SENTENCES_MAX_CHUNKS} chunks: computed as passages are shown)"
        print(f"{SENTENCES_KEPT_LOG}: {kept} passages in {took:.1f} s{later}", file=sys.stderr)
    except RagError as e:  # only slower evidence: each passage's sentences are computed when shown
        print(f"warning: the passages' sentence vectors were not computed ahead: {e}", file=sys.stderr)
    settled = pipeline.settle_heap()  # loaded: later garbage collections skip all of it
    print(f"{settled.frozen} loaded objects kept out of garbage collection ({settled.took_ms:.0f} ms)", file=sys.stderr)


def _keep_sentences_in_background(pipeline) -> None:
    import threading

    threading.Thread(target=_keep_sentences, args=(pipeline,), name="sentences", daemon=True).start()


def _ingest_for_serving(pipeline) -> None:
    """Bring the index up to date: in the background when there is one to answer from meanwhile (the
    page switches to the new generation when it is committed), else first."""
    import threading

    from rag.core.errors import IndexError_

    try:
        _ = pipeline.index
    except IndexError_:  # nothing usable yet: build it before serving
        report = pipeline.ingest(progress=_progress_bar("embedding"))
        print(f"index: {report.total_documents} documents, {report.total_chunks} chunks", file=sys.stderr)
        _keep_sentences_in_background(pipeline)
        return

    def update() -> None:
        try:
            report = pipeline.ingest()
        except RagError as e:
            print(f"error: updating the index failed: {e}; still serving the previous one", file=sys.stderr)
            return
        finally:
            _keep_sentences(pipeline)
        changes = f"+{len(report.added)} ~{len(report.changed)} -{len(report.removed)}"
        print(f"index: {report.total_documents} documents, {report.total_chunks} chunks ({changes})", file=sys.stderr)
        for s in report.skipped:
            print(f"skipped {s.source}: {s.reason}", file=sys.stderr)

    threading.Thread(target=update, name="ingest", daemon=True).start()
