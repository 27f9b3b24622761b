"""The `rag` command. Results go to stdout, logs and progress to stderr.

Imports here are cheap; each subcommand imports what it needs, so `rag --help` is instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from rag.cli.commands import BENCHMARKS
from rag.cli.exits import EXIT_CODES, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from rag.core.choices import EmbedBackend, IndexBackend, IngestEngine, LLMBackend, LLMServer, Mode
from rag.core.errors import RagError, UsageError
from rag.models.provision import PIECES

log = logging.getLogger("rag")


# CLI flag -> setting name, for flags shared by several subcommands
_SETTING_FLAGS = {
    "corpus": "corpus_dir",
    "index": "index_dir",
    "cache_dir": "cache_dir",
    "embedder": "embedder",
    "mode": "mode",
    "k": "k",
    "llm_backend": "llm_backend",
    "llm_model": "llm_model",
    "llm_base_url": "llm_base_url",
    "llm_threads": "llm_threads",
    "llm_server": "llm_server",
    "llm_parallel": "llm_parallel",
    "embed_threads": "embed_threads",
    "embed_backend": "embed_backend",
    "host": "host",
    "port": "port",
    "auth": "auth",
    "auth_file": "auth_file",
    "index_backend": "index_backend",
    "milvus_uri": "milvus_uri",
    "engine": "ingest_engine",
    "ray_address": "ray_address",
    "workers": "ray_workers",
    "gpus_per_worker": "ray_gpus_per_worker",
}
# the flags of every command that opens an index
_INDEX = ("index_backend", "milvus_uri")


def _common(parser: argparse.ArgumentParser, *names: str) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file (default: ./rag.toml, or $RAG_CONFIG)")
    parser.add_argument("--cache-dir", type=Path, help="where provisioned models live (default ~/.cache/rag)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more to stderr")
    helps = {
        "corpus": (Path, "folder (or .jsonl file) of articles (default: corpus/)"),
        "index": (Path, "index directory (default: index/)"),
        "embedder": (str, "sentence-transformers model name or path (default: the bundled e5)"),
        "mode": (str, "retrieval mode: " + ", ".join(Mode.values())),
        "k": (int, "number of passages"),
        "llm_backend": (str, "local (GGUF via llama.cpp) or openai (OpenAI-compatible endpoint)"),
        "llm_model": (str, "local: a .gguf path; openai: the model name"),
        "llm_base_url": (str, "openai backend: base URL, e.g. http://127.0.0.1:11434/v1"),
        "llm_threads": (int, "threads for the local LLM"),
        "llm_server": (str, "how the local GGUF runs: managed (llama-server, parallel slots; default) or in-process"),
        "llm_parallel": (int, "answers generated at once by the managed llama-server (its slots)"),
        "embed_threads": (int, "threads for the embedder"),
        "embed_backend": (str, "onnx-int8 (default: verified int8 copy, faster) or torch"),
        "host": (str, "address to listen on (default 127.0.0.1)"),
        "port": (int, "port to listen on (default 7860)"),
        "auth": (str, "user:password required by the chat page (shows in `ps`: prefer RAG_AUTH or --auth-file)"),
        "auth_file": (Path, "file of user:password lines required by the chat page (chmod 600)"),
        "index_backend": (str, "where the index lives: faiss (a folder, default) or milvus"),
        "milvus_uri": (str, "milvus: a .db path (Milvus Lite) or http://host:19530 (default INDEX/milvus.db)"),
        "engine": (str, "where new or changed documents are chunked and embedded: local (default) or ray"),
        "ray_address": (str, "ray: host:port of a running cluster (default: start a local Ray for the run)"),
        "workers": (int, "ray: embedding actors (default 2)"),
        "gpus_per_worker": (float, "ray: GPUs per actor (needs --embed-backend torch; default 0)"),
    }
    choices = {
        "mode": Mode.values(),
        "llm_backend": LLMBackend.values(),
        "llm_server": LLMServer.values(),
        "embed_backend": EmbedBackend.values(),
        "index_backend": IndexBackend.values(),
        "engine": IngestEngine.values(),
    }
    for name in names:
        kind, text = helps[name]
        flag = "-k" if name == "k" else "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, type=kind, help=text, choices=choices.get(name))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Cited question answering over a folder of news articles.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="provision the bundled models (embedder, LLM, tiktoken files)")
    _common(p)
    p.add_argument("--rebuild", action="store_true", help="rebuild even if present")
    p.add_argument("--only", choices=PIECES, help="provision only one of them")

    p = sub.add_parser("ingest", help="build or update the index from a corpus folder")
    _common(
        p,
        "corpus",
        "index",
        "embedder",
        "embed_threads",
        "embed_backend",
        *_INDEX,
        "engine",
        "ray_address",
        "workers",
        "gpus_per_worker",
    )
    p.add_argument("--rebuild", action="store_true", help="re-embed everything")
    p.add_argument("--check", action="store_true", help="exit 1 if the index is stale; write nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    for name, text in (("search", "retrieve passages for a question"), ("ask", "answer a question with citations")):
        p = sub.add_parser(name, help=text)
        _common(
            p,
            "index",
            "embedder",
            "mode",
            "k",
            "embed_threads",
            "embed_backend",
            *_INDEX,
            *(
                ("llm_backend", "llm_model", "llm_base_url", "llm_threads", "llm_server", "llm_parallel")
                if name == "ask"
                else ()
            ),
        )
        p.add_argument("question", nargs="?", help="the question")
        p.add_argument(
            "--questions", help="file with one question per line, or JSONL with a 'question' field; - for stdin"
        )
        p.add_argument("--json", action="store_true", help="one JSON object per question")

    p = sub.add_parser("chat", help="a conversation in the terminal, with streaming")
    _common(p, "index", "embedder", "mode", "k", "llm_backend", "llm_model", "llm_base_url", "llm_threads", *_INDEX)

    p = sub.add_parser("eval", help="evaluate retrieval (and answers) on an eval set or a benchmark")
    _common(p, "embedder", "embed_backend", "k", "llm_backend", "llm_model", "llm_base_url", "llm_threads", *_INDEX)
    p.add_argument(
        "--set", dest="eval_set", type=Path, help="eval set JSONL with gold quotes (default: eval/questions.jsonl)"
    )
    p.add_argument(
        "--bench",
        type=Path,
        help="benchmark folder with corpus.jsonl + queries.jsonl (FacQA format); with --set, that set on its corpus",
    )
    p.add_argument(
        "--configs", default="bm25,dense,hybrid,langchain", help="comma-separated: bm25,dense,hybrid,langchain"
    )
    p.add_argument("--answers", action="store_true", help="also answer every question with the LLM and score it")
    p.add_argument("--split", choices=("dev", "test"), help="only the questions of this split (held-out sets)")
    p.add_argument("--chains", help="answer chains, comma-separated: ours,langchain (default: ours; with --bench both)")
    p.add_argument(
        "--sample", type=Path, help="--bench --answers: the questions to answer (default eval/<bench>_answers.json)"
    )
    p.add_argument(
        "--lookalikes",
        type=Path,
        help="--bench --answers: unanswerable look-alikes (default eval/<bench>_lookalikes.jsonl)",
    )
    p.add_argument(
        "--replay",
        type=Path,
        metavar="REPORT",
        help="with --answers: check the replies recorded in REPORT (a report.json of an answer run) with "
        "today's checks instead of asking the model; questions it has no reply for are answered",
    )
    p.add_argument(
        "--out", type=Path, help="output folder (default: runs/<name>-<time>); with --generate: the set's JSONL file"
    )
    p.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("REPORT", "REPORT"),
        help="instead of evaluating: do two runs' report.json rank the configurations alike? (nDCG@10, paired "
        "bootstrap intervals per pair)",
    )
    g = p.add_argument_group("generated test sets (--generate N)")
    g.add_argument(
        "--generate",
        type=int,
        metavar="N",
        help="write a test set instead: sample N passages and have the chat model write questions about them "
        "(default out: runs/generated/<corpus>-<time>.jsonl); then evaluate it with --set",
    )
    g.add_argument(
        "--corpus",
        dest="generate_corpus",
        type=Path,
        metavar="PATH",
        help="--generate: folder or .jsonl file of articles (default: the corpus setting)",
    )
    g.add_argument("--languages", default="id,en", help="--generate: question languages, comma-separated (id,en)")
    g.add_argument("--seed", type=int, default=0, help="--generate: seed of the passage sample (default 0)")
    g.add_argument(
        "--unanswerable",
        type=float,
        default=0.2,
        help="--generate: share of the passages that also get an unanswerable look-alike (default 0.2)",
    )

    p = sub.add_parser("bench", help="benchmarks that print a table and write JSON")
    _common(
        p,
        "corpus",
        "index",
        "embedder",
        "embed_backend",
        "embed_threads",
        "llm_threads",
        "llm_parallel",
        *_INDEX,
        "ray_address",
    )
    p.add_argument(
        "which",
        choices=tuple(BENCHMARKS),
        help="ingest: throughput against the LangChain pipeline; search: warm latency per mode; "
        "answer: LLM first token / full answer, cold start and server memory; "
        "scale: hybrid search over replicated corpora of growing size; "
        "ann: exact vs approximate vector search at growing sizes; "
        "backends: the FAISS folder against Milvus Lite (build, memory, latency) at growing sizes; "
        "engines: a full ingest by the local engine and by Ray with --workers-list workers, side by side; "
        "load: many chat clients at once against `rag serve`, per LLM engine; "
        "curve: new prompt tokens -> first token -> correct answers over context budgets",
    )
    p.add_argument(
        "--corpora", help="ingest: comma-separated corpus folders or benchmark folders (default: corpus/ and FacQA)"
    )
    p.add_argument("--rounds", type=int, default=3, help="ingest/search/engines: repetitions (medians are reported)")
    p.add_argument("--sizes", default="10000,100000", help="scale/ann/backends: comma-separated numbers of chunks")
    p.add_argument("--workers-list", help="engines: comma-separated numbers of Ray workers (default 1,2)")
    p.add_argument("--queries", type=int, default=200, help="scale/ann: number of questions")
    p.add_argument(
        "--questions", type=Path, help="scale/search: JSONL with a 'question' field (default: eval/questions.jsonl)"
    )
    p.add_argument("--plot", type=Path, help="scale/ann/curve: also draw the figures into this PNG")
    p.add_argument("--split", help="curve: only the questions of this split of the eval set (e.g. dev)")
    p.add_argument("--answers", action="store_true", help="curve: also answer every question at every point (slow)")
    p.add_argument("--clients", type=int, default=20, help="load: concurrent chat clients")
    p.add_argument("--seconds", type=float, default=60.0, help="load: how long the clients keep asking")
    p.add_argument("--engines", default="in-process,managed", help="load: LLM engines to compare, comma-separated")
    p.add_argument("--out", type=Path, help="JSON output (default: runs/bench-<which>-<time>.json)")

    p = sub.add_parser("serve", help="start the chat page (127.0.0.1 by default)")
    _common(
        p,
        "corpus",
        "index",
        "embedder",
        "embed_backend",
        "mode",
        "k",
        "llm_backend",
        "llm_model",
        "llm_base_url",
        "llm_threads",
        "llm_server",
        "llm_parallel",
        "host",
        "port",
        "auth",
        "auth_file",
        *_INDEX,
    )
    p.add_argument("--no-ingest", action="store_true", help="do not update the index before serving")
    return parser


def settings_from_args(args: argparse.Namespace):
    from rag.settings import load_settings

    overrides: dict[str, Any] = {}
    for flag, setting in _SETTING_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[setting] = value
    return load_settings(config_file=args.config, overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    # the handler's own level also filters libraries that force DEBUG on their loggers (bm25s does)
    handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    _quiet_libraries(args.verbose)
    try:
        settings = settings_from_args(args)
        from rag.cli import commands

        handler = getattr(commands, "cmd_" + args.command)
        return int(handler(args, settings) or EXIT_OK)
    except UsageError as e:
        parser.print_usage(sys.stderr)
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _quiet_libraries(verbose: bool) -> None:
    """Keep third-party progress bars and chatter off the terminal unless -v."""
    import os

    if not verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        for name in ("bm25s", "sentence_transformers", "transformers", "httpx"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # pymilvus installs its own handlers; its query iterator warns on every scan of Milvus Lite
        # ("failed to get mvccTs"), and logs every failed request with a traceback; our own errors
        # wrap its failures in one line
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        # a locked Milvus Lite folder is logged with a traceback; our own error names the cause and the fix
        logging.getLogger("milvus_lite").setLevel(logging.CRITICAL)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
