#!/usr/bin/env python3
"""Adds EMBER's `label` and mallard's `group`/`source` to the records of `mallard features`
(raw objects with `--raw`, or vectors), joining on sha256 with a corpus manifest
(tab-separated): the benign corpus's (`sha256`, `package`, `source` when present; grouped by
project) or `shared/data/pe-corpus`'s (`sha256`, `source_repo`, `family`: the family hint
becomes `avclass` and the collection `source`, as in its EMBER rows).

    python3 corpus/label-ember.py RAW.jsonl MANIFEST.tsv benign|malicious OUT.jsonl.gz

Rows whose sha256 is not in the manifest, and error records, are left out (and counted).
"""
import csv
import gzip
import io
import json
import sys


# Packages that are builds of one code base: grouped so that no split tests one build
# against a model trained on another (wine for three machines, Mono's many packages, Qt).
SAME_PROJECT = (
    ("libwine", "wine"),
    ("wine", "wine"),
    ("libmono", "mono"),
    ("mono-", "mono"),
    ("pyqt5", "qt"),
    ("pyside6", "qt"),
    ("pycryptodome", "pycryptodome"),
    ("gcc-mingw-w64", "gcc-mingw-w64"),
    ("gtk-sharp", "gtk-sharp"),
    ("libgtk", "gtk-sharp"),
)


def project(package):
    p = package.lower()
    for suffix in ("_i386", "_amd64", "_arm64", ":i386", ":amd64", ":arm64"):
        if p.endswith(suffix):
            p = p[: -len(suffix)]
    for prefix, name in SAME_PROJECT:
        if p.startswith(prefix):
            return name
    return p


def main():
    raw, manifest, label, out = sys.argv[1:5]
    label = {"benign": 0, "malicious": 1}[label]
    rows = {}
    with open(manifest, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows[r["sha256"].lower()] = r
    kept = missing = errors = repeated = 0
    seen = set()
    # mtime=0 and no file name in the gzip header: the same rows give the same bytes, so the
    # sha256 a model file records for its training data is reproducible.
    with open(raw) as f, open(out, "wb") as raw_out, gzip.GzipFile(
        filename="", mode="wb", compresslevel=6, fileobj=raw_out, mtime=0
    ) as gz, io.TextIOWrapper(gz, encoding="utf-8") as w:
        for line in f:
            d = json.loads(line)
            if "error" in d:
                errors += 1
                continue
            sha = d.get("sha256", "").lower()
            r = rows.get(sha)
            if r is None:
                missing += 1
                continue
            if sha in seen:
                repeated += 1
                continue
            seen.add(sha)
            d.pop("path", None)
            d["label"] = label
            if "package" in r:
                d["avclass"] = ""
                d["source"] = f'{r.get("source", "")}:{r["package"]}'
                d["group"] = f'project:{project(r["package"])}'
            else:
                d["avclass"] = r["family"]
                d["source"] = r["source_repo"]
            w.write(json.dumps(d, separators=(",", ":")) + "\n")
            kept += 1
    print(f"{out}: {kept} rows ({missing} not in the manifest, {repeated} repeated, {errors} errors)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
