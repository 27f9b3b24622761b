"""A generated set and a benchmark's own questions, each kept to the passages both ask about, so that
retrieval can be compared on the same passages (docs/EVALUATION.md, generated test sets).

usage: python scripts/same_passages.py GENERATED.jsonl BENCH/queries.jsonl OUT_DIR
writes OUT_DIR/generated-same-passages.jsonl, its Indonesian questions alone in
OUT_DIR/generated-same-passages-id.jsonl (the benchmark's questions are Indonesian), and
OUT_DIR/facqa-same-passages.jsonl (eval-set records; the benchmark's keep their gold_doc_ids), to
evaluate with `rag eval --bench BENCH --set FILE`.
"""

import json
import sys
from pathlib import Path

generated, queries, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
gen = [json.loads(line) for line in generated.open(encoding="utf-8")]
real = [json.loads(line) for line in queries.open(encoding="utf-8")]
gen_docs = {e["doc_id"] for r in gen if r["answerable"] for e in r["evidence"]}
real_docs = {d for r in real if r.get("answerable", True) for d in r["gold_doc_ids"]}
both = gen_docs & real_docs
gen_same = [r for r in gen if r["answerable"] and r["evidence"][0]["doc_id"] in both]
real_same = [r for r in real if r.get("answerable", True) and set(r["gold_doc_ids"]) & both]
out.mkdir(parents=True, exist_ok=True)
gen_same_id = [r for r in gen_same if r["language"] == "id"]
for name, rows in (
    ("generated-same-passages", gen_same),
    ("generated-same-passages-id", gen_same_id),
    ("facqa-same-passages", real_same),
):
    with (out / f"{name}.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
print(
    f"passages with generated questions: {len(gen_docs)}; with FacQA questions too: {len(both)}; "
    f"generated questions on them: {len(gen_same)}; FacQA questions on them: {len(real_same)}"
)
