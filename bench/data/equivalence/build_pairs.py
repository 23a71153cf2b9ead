"""Build bench/data/equivalence/pairs.jsonl.

    python bench/data/equivalence/build_pairs.py [--routerbench DIR]

Sources:
  * written_pairs.py  - pairs written for this set (hand labels)
  * recorded_pairs.py - pairs of real recorded answers from RouterBench (via
    RouterDC) arc_challenge_train.csv / winograde_train.csv (hand labels)

Split rule (deterministic, stratified by kind x label): within each
(kind, equivalent) stratum, sort the ids by sha256(id) hex digest; the first
round(0.3 * stratum size) ids are "heldout", the rest "train".
"""

import argparse
import ast
import csv
import hashlib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import recorded_pairs  # noqa: E402
import written_pairs  # noqa: E402

DEFAULT_RB = "/work/shared/data/routerbench"
PREFIX = {"number": "num", "yesno": "yn", "letter": "let", "fact": "fact", "free": "free"}


def assign_splits(recs, heldout_share=0.3):
    strata = {}
    for rec in recs:
        strata.setdefault((rec["kind"], rec["equivalent"]), []).append(rec)
    for members in strata.values():
        members.sort(key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())
        n_held = round(heldout_share * len(members))
        for i, rec in enumerate(members):
            rec["split"] = "heldout" if i < n_held else "train"


def final_question(prompt_cell):
    """The last (un-answered) question of a few-shot RouterBench prompt."""
    text = ast.literal_eval(prompt_cell)[0]
    shots = list(re.finditer(r"Answer:\s*\n[A-E]\n\n", text))
    q = text[shots[-1].end() :] if shots else text
    q = q.replace("Please answer with the letter of the correct answer.\n\n", "")
    q = re.sub(r"\s*Print only a single choice.*$", "", q, flags=re.S)
    return q.strip()


def response(row, model):
    cell = row[model + "|model_response"]
    inner = ast.literal_eval(cell)  # every cell is a one-element Python list
    assert isinstance(inner, list) and len(inner) == 1, cell
    return inner[0]


def load_rows(path):
    rows = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            rows.setdefault(row["sample_id"], row)  # 7 arc ids repeat; responses identical
    return rows


def naive_letter(s):
    m = re.match(r"\s*\(?([A-E])\b", s)
    return m.group(1) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--routerbench", default=DEFAULT_RB)
    ap.add_argument("--out", default=os.path.join(HERE, "pairs.jsonl"))
    args = ap.parse_args()

    out = []
    for kind, groups in (
        ("number", written_pairs.NUMBER),
        ("yesno", written_pairs.YESNO),
        ("letter", written_pairs.LETTER),
        ("fact", written_pairs.FACT),
        ("free", written_pairs.FREE),
    ):
        n = 0
        for question, items in groups:
            for a, b, eq, note in items:
                n += 1
                rec = {
                    "id": f"{PREFIX[kind]}-{n:03d}",
                    "kind": kind,
                    "question": question,
                    "a": a,
                    "b": b,
                    "equivalent": eq,
                    "source": "written for this set",
                }
                if note:
                    rec["note"] = note
                out.append(rec)

    mismatches = []
    for prefix, fname, table in (
        ("arc", "arc_challenge_train.csv", recorded_pairs.ARC),
        ("wino", "winograde_train.csv", recorded_pairs.WINO),
    ):
        rows = load_rows(os.path.join(args.routerbench, fname))
        for n, (sid, ma, mb, eq, note) in enumerate(table, 1):
            row = rows[sid]
            a, b = response(row, ma), response(row, mb)
            rec = {
                "id": f"{prefix}-{n:03d}",
                "kind": "letter",
                "question": final_question(row["prompt"]),
                "a": a,
                "b": b,
                "equivalent": eq,
                "source": f"routerbench {fname[:-4]} row {sid}, {ma} vs {mb}",
            }
            if note:
                rec["note"] = note
            out.append(rec)
            la, lb = naive_letter(a), naive_letter(b)
            if (la is not None and la == lb) != eq:
                mismatches.append((rec["id"], a, b, eq))

    assign_splits(out)

    key_order = ["id", "kind", "question", "a", "b", "equivalent", "split", "source", "note"]
    with open(args.out, "w", encoding="utf-8") as fh:
        for rec in out:
            fh.write(json.dumps({k: rec[k] for k in key_order if k in rec}, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} pairs to {args.out}")
    print(
        f"{len(mismatches)} recorded pairs where a naive leading-letter regex disagrees with the hand label:"
    )
    for m in mismatches:
        print("  ", m)


if __name__ == "__main__":
    main()
