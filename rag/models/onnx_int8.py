"""An int8 ONNX copy of a sentence-transformers embedder, for faster inference on the CPU.

Built once per source model: its transformer is exported to ONNX, the weights are quantised to int8
per channel (ONNX Runtime's dynamic quantisation), and the copy is checked against the
sentence-transformers model it came from on the sample texts, passages and queries. A folder without
a passed check is refused. Mean or CLS pooling and L2 normalisation are done in numpy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from rag.core.errors import ModelMissingError, ModelVerificationError
from rag.models.embedder_provision import SAMPLE_TEXTS
from rag.steps.embedder import INT8_FORMAT as FORMAT
from rag.steps.embedder import INT8_META_FILE as META_FILE
from rag.steps.embedder import INT8_MODEL_FILE as MODEL_FILE
from rag.steps.embedder import OnnxInt8Encoder

log = logging.getLogger(__name__)

# Cosine between the int8 copy's vectors and the source model's; measured on the bundled e5: 0.99+
MIN_COSINE = 0.98


def source_key(location: str) -> str:
    """Changes when the source model's files change (names, sizes, modification times)."""
    h = hashlib.sha256(f"onnx-int8 format {FORMAT}\n".encode())
    folder = Path(location)
    if folder.is_dir():
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                st = f.stat()
                h.update(f"{f.relative_to(folder)} {st.st_size} {st.st_mtime_ns}\n".encode())
    else:
        h.update(location.encode())
    return h.hexdigest()[:16]


def int8_folder_for(models_dir: Path, location: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(location).name or location)[:60]
    return models_dir / "onnx-int8" / f"{slug}-{source_key(location)}"


def _pooling(model: Any) -> str:
    """The pooling of a Transformer -> Pooling [-> Normalize] model, else an error."""
    names = [type(m).__name__ for m in model]
    pooling = getattr(model[1], "pooling_mode", None) if len(names) > 1 else None
    if (
        names[:2] != ["Transformer", "Pooling"]
        or any(n != "Normalize" for n in names[2:])
        or pooling not in ("mean", "cls")
        or not getattr(model[1], "include_prompt", True)
    ):
        raise ModelMissingError(
            f"the int8 ONNX backend supports Transformer + mean/CLS Pooling (+ Normalize) models; this one is "
            f'{" + ".join(names)} (pooling {pooling!r}); set embed_backend = "torch"'
        )
    return str(pooling)


def build_int8(location: str, target: Path, *, local: bool) -> Path:
    """Export, quantise, verify and install the int8 copy of ``location`` at ``target``."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(location, device="cpu", local_files_only=local)
    pooling = _pooling(model)
    tokenizer = model.tokenizer
    if getattr(model[0], "do_lower_case", False):
        raise ModelMissingError('the int8 ONNX backend does not lower-case input; set embed_backend = "torch"')
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        tokenizer.save_pretrained(str(tmp))
        if not (tmp / "tokenizer.json").is_file():
            raise ModelMissingError(f'{location} has no fast tokenizer (tokenizer.json); set embed_backend = "torch"')
        transformer: Any = model[0].auto_model
        transformer.eval()

        class LastHidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = transformer

            def forward(self, input_ids, attention_mask):
                return self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        sample = tokenizer(["a b c", "d"], padding=True, return_tensors="pt")
        fp32 = tmp / "model_fp32.onnx"
        axes = {0: "batch", 1: "tokens"}
        with torch.no_grad(), warnings.catch_warnings():
            # the tracer warns about every shape-dependent Python branch it freezes; the verification
            # below is what decides whether the exported graph is right
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHidden(),
                (sample["input_ids"], sample["attention_mask"]),
                str(fp32),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
                opset_version=17,
                dynamo=False,
            )
        quantize_dynamic(str(fp32), str(tmp / MODEL_FILE), weight_type=QuantType.QInt8, per_channel=True)
        fp32.unlink()
        meta: dict[str, Any] = {
            "format": FORMAT,
            "source": location,
            "source_key": source_key(location),
            "quantization": "dynamic int8, per-channel weights (onnxruntime)",
            "pooling": pooling,
            "dim": int(model.get_embedding_dimension() or 0),
            "max_seq_length": int(model.max_seq_length or 512),
            "pad_token": tokenizer.pad_token,
            "pad_id": int(tokenizer.pad_token_id),
            "prompts": {k: v for k, v in (model.prompts or {}).items() if v is not None},
        }
        meta["verification"] = _verify(model, tmp, meta)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if not meta["verification"]["passed"]:
            raise ModelVerificationError(
                f"the int8 copy of {location} differs from it (min cosine {meta['verification']['min_cosine']:.4f} "
                f'< {MIN_COSINE}); it was not installed; set embed_backend = "torch"'
            )
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _verify(model: Any, folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    encoder = OnnxInt8Encoder(folder, meta, threads=2)
    texts = [prefix + t for t in SAMPLE_TEXTS for prefix in ("query: ", "passage: ", "")]
    ours = encoder.encode(texts, batch_size=16)
    theirs = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    cosines = (ours * theirs).sum(1)
    return {
        "texts": len(texts),
        "min_cosine": float(cosines.min()),
        "mean_cosine": float(cosines.mean()),
        "passed": bool(cosines.min() >= MIN_COSINE),
    }
