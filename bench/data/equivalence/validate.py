"""Validate pairs.jsonl and print counts per kind x label x split (markdown)."""

import collections
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIRED = {
    "id": str,
    "kind": str,
    "question": str,
    "a": str,
    "b": str,
    "equivalent": bool,
    "split": str,
    "source": str,
}
KINDS = ["number", "yesno", "letter", "fact", "free"]


PAIRS = os.path.join(HERE, "pairs.jsonl")


def main(path=PAIRS):
    errors, ids, recs = [], set(), []
    with open(path, encoding="utf-8") as fh:
        for ln, line in enumerate(fh, 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"line {ln}: bad JSON: {e}")
                continue
            for k, t in REQUIRED.items():
                if not isinstance(rec.get(k), t):
                    errors.append(f"line {ln}: field {k!r} missing or not {t.__name__}")
            if rec.get("kind") not in KINDS:
                errors.append(f"line {ln}: bad kind {rec.get('kind')!r}")
            if rec.get("split") not in ("train", "heldout"):
                errors.append(f"line {ln}: bad split {rec.get('split')!r}")
            if (
                not str(rec.get("question", "")).strip()
                or not str(rec.get("a", "")).strip()
                or not str(rec.get("b", "")).strip()
            ):
                errors.append(f"line {ln}: empty question/a/b")
            if rec.get("id") in ids:
                errors.append(f"line {ln}: duplicate id {rec.get('id')}")
            ids.add(rec.get("id"))
            recs.append(rec)
    c = collections.Counter((r["kind"], r["equivalent"], r["split"]) for r in recs)
    per_kind = collections.Counter(r["kind"] for r in recs)
    if len(recs) < 360:
        errors.append(f"only {len(recs)} pairs (< 360)")
    for k in KINDS:
        if per_kind[k] < 60:
            errors.append(f"kind {k}: only {per_kind[k]} pairs (< 60)")

    print(
        "| kind | equiv / train | equiv / heldout | not-equiv / train | not-equiv / heldout | total | heldout share |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    tot = collections.Counter()
    for k in KINDS:
        cells = [
            c[(k, True, "train")],
            c[(k, True, "heldout")],
            c[(k, False, "train")],
            c[(k, False, "heldout")],
        ]
        for i, v in enumerate(cells):
            tot[i] += v
        held = cells[1] + cells[3]
        print(f"| {k} | " + " | ".join(map(str, cells)) + f" | {sum(cells)} | {held / sum(cells):.0%} |")
    cells = [tot[i] for i in range(4)]
    print(
        "| **all** | "
        + " | ".join(map(str, cells))
        + f" | {sum(cells)} | {(cells[1] + cells[3]) / sum(cells):.0%} |"
    )
    recorded = sum(1 for r in recs if r["source"].startswith("routerbench"))
    print(
        f"\nrecorded (RouterBench) pairs: {recorded} "
        f"(arc_challenge: {sum(1 for r in recs if 'arc_challenge' in r['source'])}, "
        f"winogrande: {sum(1 for r in recs if 'winograde' in r['source'])}); written: {len(recs) - recorded}"
    )
    if errors:
        print("\nINVALID:")
        for e in errors:
            print("  " + e)
        return 1
    print("\nOK: all lines parse, ids unique, required fields present, >=360 pairs, each kind >=60")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
