"""The terminal edge: passages before the answer, evidence_ms in `ask --json`, Ctrl-C stopping one
answer in `chat`, and `ingest --check` naming damaged files. Fake models except where marked slow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_rag
from fakes import EchoChatModel, SlowEchoChatModel
from test_ui import NATO_QUESTION, build_pipeline

from rag.cli.commands import _stream_to_terminal, ask_questions
from rag.cli.terminal import skipped_plain_text
from rag.steps.corpus import Skipped


def test_ask_json_timings_carry_evidence_ms(tmp_path: Path, capsys):
    answerer = build_pipeline(tmp_path, EchoChatModel()).answerer()
    ask_questions(answerer, [NATO_QUESTION], as_json=True)
    out = json.loads(capsys.readouterr().out)
    timings = out["timings"]
    assert 0 <= timings["evidence_ms"] <= timings["total_ms"] and out["citations"]


def test_terminal_lists_the_passages_before_the_answer(tmp_path: Path, capsys):
    answerer = build_pipeline(tmp_path, EchoChatModel()).answerer()
    answer = _stream_to_terminal(answerer, NATO_QUESTION, [])
    out = capsys.readouterr().out
    assert out.startswith("Reading 3 passages:\n[1] ") and "nato.txt" in out.split("--")[0]
    assert out.index("Grushko") < out.index(answer.text)  # the passage is printed before the reply


def test_ctrl_c_stops_one_answer_and_closes_the_model_stream(tmp_path: Path, capsys):
    chat = SlowEchoChatModel(delay_s=0.05)
    answerer = build_pipeline(tmp_path, chat).answerer()

    class Interrupting:  # what Ctrl-C does to the loop in the middle of a reply
        def stream(self, question, history=()):
            for n, event in enumerate(answerer.stream(question, history)):
                if n == 3:
                    raise KeyboardInterrupt
                yield event

    assert _stream_to_terminal(Interrupting(), NATO_QUESTION, [], stoppable=True) is None
    assert "(stopped)" in capsys.readouterr().out
    assert chat.running == 0 and chat.closed_early == 1
    with pytest.raises(KeyboardInterrupt):  # `rag ask` is not a conversation: Ctrl-C leaves
        _stream_to_terminal(Interrupting(), NATO_QUESTION, [])


def test_skipped_files_are_named_as_damaged():
    text = skipped_plain_text(
        [Skipped("bad.txt", "binary content (NUL byte)"), Skipped("x.jsonl:3", "invalid JSON: Expecting value")],
        check=True,
    )
    assert text.startswith("2 skipped (would not be indexed) in 2 files: damaged") and "x.jsonl:3: invalid JSON" in text


@pytest.mark.slow
def test_ingest_check_says_a_file_is_damaged(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ok.txt").write_text(
        "Menteri Luar Negeri Rusia bertemu Menteri Luar Negeri AS di Paris.", encoding="utf-8"
    )
    index = tmp_path / "index"
    assert run_rag("ingest", index=index, corpus=corpus).returncode == 0
    (corpus / "rusak.jsonl").write_bytes(b'{"id": "a", "text": "Baik."}\n{"id": "b", "text": \n\x00\x01\x02')
    out = run_rag("ingest", "--check", index=index, corpus=corpus)
    assert out.returncode == 1  # stale: one new article
    assert "would change: +1" in out.stdout and "skipped (would not be indexed) in 1 file: damaged" in out.stdout
    assert "rusak.jsonl:2" in out.stdout


@pytest.mark.slow
def test_a_password_on_the_command_line_is_warned_about(tmp_path: Path):
    out = run_rag("serve", "--auth", "redaksi:rahasia", "--no-ingest", index=tmp_path / "no-index")
    assert out.returncode == 3 and "no index at" in out.stderr  # fails before listening: no index there
    assert "--auth puts the password in the process list" in out.stderr and "RAG_AUTH" in out.stderr
