#!/usr/bin/env python3
"""Adds EMBER's `label` and mallard's `group`/`source` to the raw objects of
`mallard features --raw`, joining on sha256 with a corpus manifest (tab-separated, with
`sha256` and `package` columns, and `source` when present).

    python3 corpus/label-ember.py RAW.jsonl MANIFEST.tsv benign|malicious OUT.jsonl.gz

Rows whose sha256 is not in the manifest, and error records, are left out (and counted).
"""
import csv
import gzip
import json
import sys


def main():
    raw, manifest, label, out = sys.argv[1:5]
    label = {"benign": 0, "malicious": 1}[label]
    rows = {}
    with open(manifest, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows[r["sha256"].lower()] = r
    kept = missing = errors = 0
    with open(raw) as f, gzip.open(out, "wt", compresslevel=6) as w:
        for line in f:
            d = json.loads(line)
            if "error" in d:
                errors += 1
                continue
            r = rows.get(d.get("sha256", "").lower())
            if r is None:
                missing += 1
                continue
            d.pop("path", None)
            d["label"] = label
            d["avclass"] = ""
            d["source"] = f'{r.get("source", "")}:{r["package"]}'
            d["group"] = f'package:{r["package"]}'
            w.write(json.dumps(d, separators=(",", ":")) + "\n")
            kept += 1
    print(f"{out}: {kept} rows ({missing} not in the manifest, {errors} errors)", file=sys.stderr)


if __name__ == "__main__":
    main()
