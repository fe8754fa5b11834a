#!/usr/bin/env python3
"""Out-of-fold stacking of the static detectors (issue 14): joins the out-of-fold
predictions that `bash bench/static-detectors.sh` leaves in $WORK (cv-<set>.jsonl) on
sha256, and scores each detector, their mean, a logistic regression over their logits
whose weights are *cross-fitted*: for each fold, the weights are fitted on the other folds'
rows and applied to this fold's. The folds are the detectors' own (`$WORK/folds.tsv`, the fold
file every detector's cross-validation read) when it exists, else 5 folds of whole groups
(family hint, benign project, from malconv-groups.tsv). Then a per-kind table at each one's
1%-FPR threshold. A detector whose predictions mark rows outside its domain (dotnet) is a
specialist, as in `mallard stack`: it adds intercept + weight x logit to the stacked logit on
its domain only, fitted with that logit as offset; printed as "with specialists".

    python3 bench/stack.py [WORK] [SET...]     (default: ~/.cache/mallard/static-detectors,
                                                 every cv-*.jsonl there)

The base predictions are already out of fold, so the only thing fitted here is the
stacker, and it never sees the rows it is scored on. Pure Python (no numpy needed).
"""
import csv
import glob
import json
import math
import os
import random
import re
import sys

WORK = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/mallard/static-detectors")
SHARED = os.environ.get("SHARED", "../shared")
BENIGN = os.environ.get("BENIGN", os.path.expanduser("~/.cache/mallard/benign-corpus"))
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def manifests():
    name_to_sha, kind = {}, {}
    with open(f"{BENIGN}/MANIFEST.tsv", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            sha = r["sha256"].lower()
            name_to_sha[r["name"]] = sha
            k = {"dll": "DLL", "exe": "EXE", ".net": ".NET", "efi": "EFI"}.get(r["kind"], r["kind"])
            if r.get("packed") == "upx":
                k += " UPX-packed"
            if r.get("packed") == "sfx":
                k = "installer-like (SFX)"
            kind[sha] = k
    with open(f"{SHARED}/data/pe-corpus/MANIFEST.tsv", newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            k = ".NET" if r["dotnet"] == "1" else r["type"].upper()
            kind[r["sha256"].lower()] = k
    return name_to_sha, kind


def sha_of(id_, name_to_sha):
    base = os.path.basename(id_)
    stem = base.split(".")[0].lower()
    if HEX64.match(stem):
        return stem
    return name_to_sha.get(base)


def load(path, name_to_sha):
    out = {}
    with open(path) as f:
        for line in f:
            r = json.loads(line)
            sha = sha_of(r["id"], name_to_sha)
            if sha:
                out[sha] = (1 if r["label"] == "malicious" else 0, r["probs"][1], r.get("domain", True))
    return out


def auc(y, s):
    pairs = sorted(zip(s, y))
    pos = sum(y)
    neg = len(y) - pos
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        r = (i + j + 1) / 2.0
        rank_sum += r * sum(1 for k in range(i, j) if pairs[k][1] == 1)
        i = j
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def threshold_at(y, s, fpr):
    neg = sorted((v for v, t in zip(s, y) if t == 0), reverse=True)
    k = int(math.floor(fpr * len(neg)))
    # Scores strictly above the (k+1)-th highest benign score: at most k false positives.
    return neg[k] if k < len(neg) else -math.inf


def tpr_at(y, s, fpr):
    t = threshold_at(y, s, fpr)
    pos = [v for v, l in zip(s, y) if l == 1]
    return sum(v > t for v in pos) / len(pos)


def logit(p):
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def fit_logreg(X, y, l2=1e-2, iters=50, offset=None):
    """Newton's method on the L2-regularised log loss; X rows carry a leading 1 (or, with
    `offset`, a fixed logit per row is added to x . w)."""
    d = len(X[0])
    w = [0.0] * d
    offset = offset or [0.0] * len(X)
    for _ in range(iters):
        g = [l2 * w[j] for j in range(d)]
        H = [[l2 if a == b else 0.0 for b in range(d)] for a in range(d)]
        for x, t, o in zip(X, y, offset):
            z = o + sum(wj * xj for wj, xj in zip(w, x))
            p = 1 / (1 + math.exp(-max(min(z, 30), -30)))
            for a in range(d):
                g[a] += (p - t) * x[a]
                for b in range(d):
                    H[a][b] += p * (1 - p) * x[a] * x[b]
        # Solve H step = g (Gauss-Jordan; d is tiny).
        M = [row[:] + [g[i]] for i, row in enumerate(H)]
        for c in range(d):
            piv = max(range(c, d), key=lambda r: abs(M[r][c]))
            M[c], M[piv] = M[piv], M[c]
            for r in range(d):
                if r != c and M[c][c] != 0:
                    f = M[r][c] / M[c][c]
                    M[r] = [a - f * b for a, b in zip(M[r], M[c])]
        step = [M[i][d] / M[i][i] for i in range(d)]
        w = [a - b for a, b in zip(w, step)]
        if max(abs(s) for s in step) < 1e-8:
            break
    return w


def main():
    name_to_sha, kind = manifests()
    files = sorted(glob.glob(f"{WORK}/cv-*.jsonl"))
    sets = sys.argv[2:] or [os.path.basename(f)[3:-6] for f in files]
    preds = {s: load(f"{WORK}/cv-{s}.jsonl", name_to_sha) for s in sets}
    common = sorted(set.intersection(*(set(p) for p in preds.values())))
    if not common:
        sys.exit("no sample is in every prediction file")
    groups = {}
    gpath = f"{WORK}/malconv-groups.tsv"
    with open(gpath) if os.path.exists(gpath) else open(os.devnull) as f:
        for line in f:
            name, _, g = line.rstrip("\n").partition("\t")
            sha = sha_of(name, name_to_sha)
            if sha and g and name != "name":
                groups[sha] = g
    y = [preds[sets[0]][s][0] for s in common]
    for st in sets[1:]:
        assert all(preds[st][s][0] == t for s, t in zip(common, y)), f"labels differ in {st}"
    cols = {st: [preds[st][s][1] for s in common] for st in sets}
    # Cross-fitted stacker over the detectors' folds, else over whole groups (a sample
    # without a named group is its own).
    keys = [groups.get(s, s) for s in common]
    uniq = sorted(set(keys))
    plan = {}
    if os.path.exists(f"{WORK}/folds.tsv"):
        with open(f"{WORK}/folds.tsv") as f:
            for line in f:
                sha, _, k = line.rstrip("\n").partition("\t")
                if HEX64.match(sha):
                    plan[sha] = int(k) - 1
    if plan and all(s in plan for s in common):
        fold = [plan[s] for s in common]
        print(f"stacker folds: the detectors' own ({WORK}/folds.tsv)")
    else:
        rng = random.Random(42)
        rng.shuffle(uniq)
        fold_of_group = {g: i % 5 for i, g in enumerate(uniq)}
        fold = [fold_of_group[k] for k in keys]
    # A detector whose predictions mark files outside its domain (`"domain": false`: the
    # dotnet set on native files) is a specialist: it adds intercept + weight x logit to the
    # others' stacked logit on its domain only, fitted with that logit as offset (L2 1, as
    # `mallard stack`).
    inside = {st: [preds[st][s][2] for s in common] for st in sets}
    special = [st for st in sets if not all(inside[st])]
    general = [st for st in sets if st not in special]
    X = [[1.0] + [logit(cols[st][i]) for st in general] for i in range(len(common))]
    stacked = [0.0] * len(common)
    weights = []
    for k in range(max(fold) + 1):
        tr = [i for i in range(len(common)) if fold[i] != k]
        w = fit_logreg([X[i] for i in tr], [y[i] for i in tr])
        weights.append(w)
        for i in range(len(common)):
            if fold[i] == k:
                stacked[i] = 1 / (1 + math.exp(-max(min(sum(a * b for a, b in zip(w, X[i])), 30), -30)))
    if len(general) == 1:
        stacked = cols[general[0]][:]  # one general detector: its score as it is
    with_special = None
    if special:
        base = [logit(v) for v in stacked]
        S = [sum(([float(inside[st][i]), inside[st][i] * logit(cols[st][i])] for st in special), [])
             for i in range(len(common))]
        with_special = stacked[:]
        for k in range(max(fold) + 1):
            tr = [i for i in range(len(common)) if fold[i] != k and any(inside[st][i] for st in special)]
            w = fit_logreg([S[i] for i in tr], [y[i] for i in tr], l2=1.0, iters=100, offset=[base[i] for i in tr])
            print("specialist weights (intercept, weight per specialist), fold", k + 1, " ".join(f"{v:+.3f}" for v in w))
            for i in range(len(common)):
                if fold[i] == k:
                    z = base[i] + sum(a * b for a, b in zip(w, S[i]))
                    with_special[i] = 1 / (1 + math.exp(-max(min(z, 30), -30)))
    mean = [sum(cols[st][i] for st in sets) / len(sets) for i in range(len(common))]
    print(f"{len(common)} files in every prediction file ({sum(y)} malware, {len(y) - sum(y)} benign); "
          f"stacker folds over {len(uniq)} groups")
    print("stacker weights (intercept, " + ", ".join(general) + ") per fold:")
    for w in weights:
        print("   " + "  ".join(f"{v:+.3f}" for v in w))
    rows = [(st, cols[st]) for st in sets] + [("mean of probabilities", mean), ("stacked (cross-fitted)", stacked)]
    if with_special:
        rows.append(("with specialists (cross-fitted)", with_special))
    print("\n| detector | ROC AUC | TPR at 1% FPR | TPR at 0.1% FPR |\n|---|---|---|---|")
    for name, s in rows:
        print(f"| {name} | {auc(y, s):.4f} | {tpr_at(y, s, 0.01):.3f} | {tpr_at(y, s, 0.001):.3f} |")
    kinds = sorted({kind.get(s, "?") for s in common})
    print("\nPer kind at each detector's overall 1%-FPR threshold: share flagged "
          "(malware: detection rate; benign: false-positive rate)\n")
    print("| side | kind | files | " + " | ".join(n for n, _ in rows) + " |")
    print("|---|---|---|" + "---|" * len(rows))
    th = {n: threshold_at(y, s, 0.01) for n, s in rows}
    for side in (1, 0):
        for kd in kinds:
            idx = [i for i, s in enumerate(common) if y[i] == side and kind.get(s, "?") == kd]
            if len(idx) < 10:
                continue
            cells = [f"{sum(s[i] > th[n] for i in idx) / len(idx):.3f}" for n, s in rows]
            print(f"| {'malware' if side else 'benign'} | {kd} | {len(idx)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
