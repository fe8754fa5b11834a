#!/usr/bin/env python3
"""Turns labelled EMBER v2 rows into rows of mallard's hardened set (`ember-v2-hardened`,
issue 15): each row whose file was re-extracted with
`mallard features FILES --set ember-v2-hardened --raw` takes that file's features (the
overlay, DOS stub, slack and free header fields left out); every other row keeps its
whole-file features and is tagged, so that mallard masks what it can of them (timestamp,
section names, debug and certificate entries) when it reads the row. Labels, groups and
every other field of the labelled rows are kept.

    python3 corpus/harden-rows.py LABELLED.jsonl.gz HARDENED-RAW.jsonl OUT.jsonl.gz

Prints how many rows took re-extracted features.
"""
import gzip
import json
import sys

FEATURES = ("histogram", "byteentropy", "strings", "general", "header", "section",
            "imports", "exports", "datadirectories")


def main(labelled, hardened, out):
    fresh = {}
    with open(hardened) as f:
        for line in f:
            r = json.loads(line)
            if "error" not in r and r.get("sha256"):
                fresh[r["sha256"].lower()] = {k: r[k] for k in FEATURES if k in r}
    n = took = 0
    # mtime=0 and no name in the gzip header: the same rows give the same bytes (the model
    # file records the dataset's sha256).
    with gzip.open(labelled, "rt") as f, open(out, "wb") as raw_out, gzip.GzipFile(
        filename="", mode="wb", compresslevel=6, fileobj=raw_out, mtime=0
    ) as o:
        for line in f:
            r = json.loads(line)
            h = fresh.get(r.get("sha256", "").lower())
            if h is not None:
                r.update(h)
                took += 1
            r["set"] = "ember-v2-hardened"
            o.write((json.dumps(r) + "\n").encode())
            n += 1
    print(f"{out}: {n} rows, {took} with features of the hardened file, {n - took} masked only")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
