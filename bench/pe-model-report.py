#!/usr/bin/env python3
"""Per-source and per-kind table of out-of-fold predictions (`mallard cv --predictions`):
detection for malware rows, false positives for benign rows, at the thresholds given.

    python3 bench/pe-model-report.py PRED.jsonl MALWARE_MANIFEST.tsv BENIGN_MANIFEST.tsv \
        --threshold 0.93 [--threshold 0.99 ...]
"""
import argparse
import collections
import csv
import json


def manifest(path):
    with open(path, newline="") as f:
        return {r["sha256"].lower(): r for r in csv.DictReader(f, delimiter="\t")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("predictions")
    ap.add_argument("malware")
    ap.add_argument("benign")
    ap.add_argument("--threshold", type=float, action="append", required=True)
    a = ap.parse_args()
    mal, ben = manifest(a.malware), manifest(a.benign)
    rows = []
    for line in open(a.predictions):
        p = json.loads(line)
        sha = p["id"].lower()
        score = p["probs"][1]  # labels sorted: benign, malicious
        if p["label"] == "malicious":
            m = mal.get(sha, {})
            kind = ".net" if m.get("dotnet") == "1" else m.get("type", "?")
            rows.append(("malicious", "source " + m.get("source_repo", "?"), m.get("machine", "?"), kind, score))
        else:
            m = ben.get(sha, {})
            src = f'{m.get("source", "?")}:{m.get("package", "?")}'
            rows.append(("benign", "toolchain " + m.get("toolchain", "?"), m.get("machine", "?"), m.get("kind", "?"), score))
            if m.get("packed") not in (None, "", "0", "no"):
                rows.append(("benign", "packed " + m["packed"], m.get("machine", "?"), m.get("kind", "?"), score))
            if m.get("signed") in ("1", "yes"):
                rows.append(("benign", "signed", m.get("machine", "?"), m.get("kind", "?"), score))
    ts = a.threshold
    head = "| group | files | " + " | ".join(f"flagged @ {t:.4g}" for t in ts) + " |"
    for title, key in (("by source / toolchain", 1), ("by machine", 2), ("by kind", 3)):
        print(f"\n### {title}\n")
        print(head)
        print("|---|---:|" + "---:|" * len(ts))
        groups = collections.defaultdict(list)
        for r in rows:
            if key == 1 or not r[1].startswith(("packed", "signed")):
                groups[(r[0], r[key])].append(r[4])
        for (label, g), scores in sorted(groups.items()):
            cells = " | ".join(f"{sum(s >= t for s in scores) / len(scores):.1%}" for t in ts)
            print(f"| {label}: {g} | {len(scores)} | {cells} |")


if __name__ == "__main__":
    main()
