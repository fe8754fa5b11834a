#!/usr/bin/env python3
"""Rows for training on mutants (issue 15): the EMBER raw objects of `mallard mutate`'s
output (`mallard features MUTANTS --set ember-v2-hardened --raw`), each joined to the
labelled row of the file it was made from, whose label, group and source it takes (so a
mutant never sits on the other side of a split from its original). Files are named
`NAME.mK`; NAME is looked up in the manifest's `name` column, or is `SHA256.bin`.

    python3 corpus/mutant-rows.py LABELLED.jsonl.gz MUTANTS-RAW.jsonl MANIFEST.tsv OUT.jsonl.gz

OUT holds the labelled rows, then the mutants' rows sorted by sha256 (the same bytes on
every run: gzip without a time stamp).
"""
import csv
import gzip
import json
import os
import sys

FEATURES = ("histogram", "byteentropy", "strings", "general", "header", "section",
            "imports", "exports", "datadirectories", "set")


def main(labelled, mutants, manifest, out):
    csv.field_size_limit(1 << 20)
    name_sha = {}
    with open(manifest) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r.get("name") and r.get("sha256"):
                name_sha[r["name"]] = r["sha256"].lower()
    rows = {}
    order = []
    with gzip.open(labelled, "rt") as f:
        for line in f:
            r = json.loads(line)
            sha = r["sha256"].lower()
            if sha not in rows:
                order.append(sha)
            rows[sha] = r
    made = {}
    orphans = 0
    with open(mutants) as f:
        for line in f:
            m = json.loads(line)
            if "error" in m or "path" not in m:
                continue
            base = os.path.basename(m["path"]).rsplit(".m", 1)[0]
            orig = rows.get(name_sha.get(base, base.removesuffix(".bin")).lower())
            if orig is None:
                orphans += 1
                continue
            r = dict(orig)
            r.update({k: m[k] for k in FEATURES if k in m})
            r["sha256"] = m["sha256"]
            made[m["sha256"]] = r
    with open(out, "wb") as raw_out, gzip.GzipFile(
        filename="", mode="wb", compresslevel=6, fileobj=raw_out, mtime=0
    ) as o:
        for sha in order:
            o.write((json.dumps(rows[sha]) + "\n").encode())
        for sha in sorted(made):
            o.write((json.dumps(made[sha]) + "\n").encode())
    print(f"{out}: {len(order)} rows and {len(made)} mutants' rows"
          + (f" ({orphans} mutants of files not in the labelled rows left out)" if orphans else ""))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
