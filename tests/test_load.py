"""20 chat clients at once against the real product on loopback (bundled e5 + Qwen2.5 GGUF served by
the managed llama-server), driven by the same code as `rag bench load`.

Writes its figures to test-artifacts/load.json; docs/RELIABILITY.md quotes `rag bench load`."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from rag.core.stats import percentile
from rag.pipeline import Pipeline
from rag.settings import REPO_ROOT, Settings
from rag.tools.benchmarks.common import questions_from
from rag.tools.benchmarks.load import drive, tree_rss_mb
from ui.app import launch

pytestmark = pytest.mark.slow
CLIENTS = 20
SECONDS = 60


def test_twenty_concurrent_chat_clients(tmp_path: Path):
    import os

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(index_dir=tmp_path / "index", port=port, llm_server="managed").validated()
    pipeline = Pipeline(settings)
    pipeline.ingest()
    demo = launch(pipeline, block=False)
    try:
        questions = questions_from(REPO_ROOT / "eval" / "questions.jsonl")
        pipeline.answerer().answer(questions[0])  # starts llama-server and reads the system prompt
        server = pipeline.chat_model().chat.server
        rss_before = tree_rss_mb(os.getpid())
        records, wall_s = drive(demo.local_url, questions, CLIENTS, SECONDS)
        rss_after = tree_rss_mb(os.getpid())
        slots = pipeline.generation_queue.slots
        restarts = server.restarts
    finally:
        demo.close()
        pipeline.chat_model().chat.server.stop()

    errors = [r.error for r in records if r.error]
    assert errors == []
    evidence = [r.evidence_s for r in records if r.evidence_s is not None]
    total = [r.total_s for r in records if r.total_s is not None]
    figures = {
        "clients": CLIENTS,
        "slots": slots,
        "answers": len(records),
        "wall_s": round(wall_s, 1),
        "answers_per_minute": round(60 * len(records) / wall_s, 1),
        "evidence_s": {"p50": round(percentile(evidence, 0.5), 1), "p90": round(percentile(evidence, 0.9), 1)},
        "full_answer_s": {"p50": round(percentile(total, 0.5), 1), "p90": round(percentile(total, 0.9), 1)},
        "rss_mb_before": round(rss_before),
        "rss_mb_after": round(rss_after),
        "server_restarts": restarts,
    }
    (REPO_ROOT / "test-artifacts").mkdir(exist_ok=True)
    (REPO_ROOT / "test-artifacts" / "load.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures))
    assert len(records) >= CLIENTS  # every client got at least one complete answer
    assert slots == settings.llm_parallel > 1  # answers were generated several at a time
    assert restarts == 0
    # the evidence comes first: half the questions saw their passages before half were fully answered
    assert percentile(evidence, 0.5) < percentile(total, 0.5)
    assert rss_after - rss_before < 500  # memory (the process and its llama-server) stays bounded under load
