"""Embedders: two methods (embed_documents, embed_query) plus token counting and an identity.

Vectors are float32 and L2-normalised, so inner product is cosine similarity (higher is closer).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.core.errors import ModelMissingError, ModelVerificationError

log = logging.getLogger(__name__)

# The int8 ONNX copy's folder (built by rag.models.onnx_int8): the model, its tokenizer, and this
# metadata file, which describes pooling and padding and records the verification against the source.
INT8_FORMAT = 1
INT8_MODEL_FILE = "model_int8.onnx"
INT8_META_FILE = "onnx_int8.json"


class Embedder(Protocol):
    name: str
    dim: int
    query_prefix: str
    passage_prefix: str

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for ``text`` as a passage (prefix and special tokens included)."""
        ...

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        """count_tokens of each text, as one batch (the tokenizer's own threads)."""
        ...

    def identity(self) -> dict[str, Any]: ...


def default_prefixes(name: str, prompts: dict[str, str]) -> tuple[str, str]:
    """Query/passage prefixes: the model's declared prompts, else the e5 convention for e5 models."""
    if "query" in prompts or "passage" in prompts:
        return prompts.get("query", ""), prompts.get("passage", prompts.get("document", ""))
    if "e5" in name.lower():
        return "query: ", "passage: "
    return "", ""


class _Identified:
    """The identity an index records: what must match for its vectors to be comparable."""

    backend = ""
    name: str
    dim: int
    query_prefix: str
    passage_prefix: str
    max_seq_length: int

    def _set_prefixes(self, described_by: str, prompts: dict[str, str], query: str | None, passage: str | None) -> None:
        q, p = default_prefixes(described_by, prompts)
        self.query_prefix = q if query is None else query
        self.passage_prefix = p if passage is None else passage

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "normalized": True,
            "query_prefix": self.query_prefix,
            "passage_prefix": self.passage_prefix,
            "max_seq_length": self.max_seq_length,
            "backend": self.backend,
        }


class SentenceTransformerEmbedder(_Identified):
    """Any sentence-transformers model (local folder or Hub name), run on the CPU."""

    backend = "torch"

    def __init__(
        self,
        location: str,
        *,
        name: str,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        threads: int = 2,
        batch_size: int = 32,
    ) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        local = Path(location).is_dir()
        try:
            # a local folder must never trigger a Hub lookup
            self.model = SentenceTransformer(location, device="cpu", local_files_only=local)
        except OSError as e:
            raise ModelMissingError(
                f"cannot load embedder {name!r} from {location!r}: {e}. Give a sentence-transformers folder, "
                "or a Hub name on a machine with a network, or the bundled one (run `rag models`)"
            ) from e
        self.name = name
        self.location = location
        self.batch_size = batch_size
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ModelMissingError(f"embedder {name!r} does not declare its embedding dimension")
        self.dim = int(dim)
        prompts = {k: v for k, v in (self.model.prompts or {}).items() if v is not None}
        self._set_prefixes(name + " " + location, prompts, query_prefix, passage_prefix)
        self.max_seq_length = int(self.model.max_seq_length or 512)
        self._tokenizer = self.model.tokenizer

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            [self.passage_prefix + t for t in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        vector = self.model.encode(
            [self.query_prefix + text], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.ascontiguousarray(vector[0], dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(self.passage_prefix + text, add_special_tokens=True)["input_ids"])

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        ids = self._tokenizer([self.passage_prefix + t for t in texts], add_special_tokens=True)["input_ids"]
        return [len(i) for i in ids]


class OnnxInt8Encoder:
    """Runs an int8 ONNX copy (see rag.models.onnx_int8): tokenise, run, pool, L2-normalise."""

    def __init__(self, folder: Path, meta: dict[str, Any], *, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(folder / INT8_MODEL_FILE), options, providers=["CPUExecutionProvider"])
        self.meta = meta
        self.dim = int(meta["dim"])
        self.counter = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.counter.no_truncation()
        self.counter.no_padding()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(meta["max_seq_length"]))
        self.tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=str(meta["pad_token"]))

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        for begin in range(0, len(order), batch_size):
            rows = order[begin : begin + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            if self.meta["pooling"] == "cls":
                pooled = hidden[:, 0]
            else:
                weights = mask[..., None].astype(np.float32)
                pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
            out[rows] = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return out


class OnnxInt8Embedder(_Identified):
    """A sentence-transformers model run as its verified int8 ONNX copy (about 1.4x faster on a CPU)."""

    backend = "onnx-int8"

    def __init__(
        self,
        folder: Path,
        *,
        name: str,
        query_prefix: str | None = None,
        passage_prefix: str | None = None,
        threads: int = 2,
        batch_size: int = 16,
    ) -> None:
        meta = check_int8_folder(folder)
        self.encoder = OnnxInt8Encoder(folder, meta, threads=threads)
        self.name = name
        self.batch_size = batch_size
        self.dim = self.encoder.dim
        self.max_seq_length = int(meta["max_seq_length"])
        self._set_prefixes(name + " " + str(meta["source"]), meta.get("prompts", {}), query_prefix, passage_prefix)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode([self.passage_prefix + t for t in texts], self.batch_size)

    def embed_query(self, text: str) -> np.ndarray:
        return self.encoder.encode([self.query_prefix + text], 1)[0]

    def count_tokens(self, text: str) -> int:
        return len(self.encoder.counter.encode(self.passage_prefix + text).ids)

    def count_tokens_many(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self.encoder.counter.encode_batch([self.passage_prefix + t for t in texts])]


def check_int8_folder(folder: Path) -> dict[str, Any]:
    """The metadata of a verified int8 copy; a folder that failed or skipped verification is refused."""
    try:
        meta = json.loads((folder / INT8_META_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelVerificationError(f"{folder} is not a verified int8 embedder ({e}); delete it to rebuild") from e
    if meta.get("format") != INT8_FORMAT or not meta.get("verification", {}).get("passed"):
        raise ModelVerificationError(f"{folder} failed verification or is an old format; delete it to rebuild")
    for name in (INT8_MODEL_FILE, "tokenizer.json"):
        if not (folder / name).is_file():
            raise ModelVerificationError(f"{folder / name} is missing; delete {folder} to rebuild")
    return dict(meta)
