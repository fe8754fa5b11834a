#!/usr/bin/env python3
"""Side-by-side: Python LightGBM (defaults) vs mallard-gbdt on ClaMP raw/integrated and
BIG 2015 5-fold CV, same data, same splits, same machine, same run.

LightGBM is run exactly as shared/baselines/lightgbm_tables.py runs it (LGBMClassifier
(verbose=-1), sklearn StratifiedKFold(5, shuffle=True, random_state=42) for BIG 2015); the
BIG 2015 fold of each row is handed to mallard's `tables_bench` example so both see the same
folds. Fit times are wall-clock seconds of fit() / Gbdt::fit, median of --repeat runs.

Needs a Python with lightgbm, scikit-learn, pandas (a scratch venv, never in the repo):
  python3 -m venv /tmp/lgb && /tmp/lgb/bin/pip install lightgbm scikit-learn pandas
  /tmp/lgb/bin/python crates/mallard-gbdt/bench/compare.py [--shared ../shared] [--repeat 3]
      [--threads N] [--dnn]
It builds the example with `cargo build --release -p mallard-gbdt --example tables_bench`
(honours CARGO_TARGET_DIR) unless --bin points at a built binary.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import lightgbm
from lightgbm import LGBMClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold

HERE = os.path.dirname(os.path.abspath(__file__))
WORKSPACE = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def tpr_at_fpr(y, s, max_fpr):
    fpr, tpr, _ = roc_curve(y, s)
    ok = fpr <= max_fpr
    return float(tpr[ok].max()) if ok.any() else 0.0


def load_clamp(shared, name):
    d = os.path.join(shared, "data/pe-header/clamp")
    tr = pd.read_csv(os.path.join(d, f"{name}-train.csv"))
    te = pd.read_csv(os.path.join(d, f"{name}-test.csv"))
    ytr, yte = tr.pop("class").to_numpy(), te.pop("class").to_numpy()
    for col in tr.columns:
        if not (pd.api.types.is_numeric_dtype(tr[col]) and pd.api.types.is_numeric_dtype(te[col])):
            cats = sorted(tr[col].astype(str).unique())
            m = {c: i for i, c in enumerate(cats)}
            tr[col] = tr[col].astype(str).map(m).astype(float)
            te[col] = te[col].astype(str).map(m).fillna(-1).astype(float)
    tr, te = tr.astype(float), te.astype(float)
    empty = [c for c in tr.columns if tr[c].isna().all()]
    return tr.drop(columns=empty), ytr, te.drop(columns=empty), yte


def lgb_clamp(shared, name, threads):
    Xtr, ytr, Xte, yte = load_clamp(shared, name)
    kw = dict(verbose=-1) if threads is None else dict(verbose=-1, n_jobs=threads)
    m = LGBMClassifier(**kw)
    t0 = time.perf_counter()
    m.fit(Xtr, ytr)
    secs = time.perf_counter() - t0
    p = m.predict_proba(Xte)[:, 1]
    return dict(roc_auc=roc_auc_score(yte, p), tpr_at_1pct_fpr=tpr_at_fpr(yte, p, 0.01),
                tpr_at_0_1pct_fpr=tpr_at_fpr(yte, p, 0.001),
                accuracy=accuracy_score(yte, (p >= 0.5).astype(int)), train_seconds=secs)


def big_data(shared):
    d = os.path.join(shared, "data/big2015")
    X = pd.read_csv(os.path.join(d, "asm-counts-train.csv"))
    y = pd.read_csv(os.path.join(d, "trainLabels.csv"))
    df = X.merge(y, on="Id", how="inner", validate="one_to_one")
    yy = df.pop("Class").to_numpy() - 1
    return df.drop(columns=["Id"]).astype(float).to_numpy(), yy


def big_folds(yy):
    skf = StratifiedKFold(n_splits=5, shuffle=True, random_state=42)
    fold = np.zeros(len(yy), dtype=int)
    for k, (_, te) in enumerate(skf.split(np.zeros(len(yy)), yy)):
        fold[te] = k
    return fold


def lgb_big(XX, yy, fold, threads):
    kw = dict(verbose=-1) if threads is None else dict(verbose=-1, n_jobs=threads)
    oof = np.zeros((len(yy), 9))
    total = 0.0
    for k in range(5):
        tr, te = np.where(fold != k)[0], np.where(fold == k)[0]
        m = LGBMClassifier(**kw)
        t0 = time.perf_counter()
        m.fit(XX[tr], yy[tr])
        total += time.perf_counter() - t0
        oof[te] = m.predict_proba(XX[te])
    return dict(accuracy=accuracy_score(yy, oof.argmax(1)),
                macro_f1=f1_score(yy, oof.argmax(1), average="macro"),
                log_loss=log_loss(yy, oof, labels=list(range(9))), train_seconds=total)


def mallard_runs(binary, shared, folds_file, threads, dnn):
    cmd = [binary, "--shared", shared, "--folds", folds_file]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if dnn:
        cmd += ["--dnn"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        r = json.loads(line)
        if r["dataset"] == "BIG 2015" and r.get("fold") != "pooled":
            continue
        res[(r["dataset"], r["model"])] = r
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(WORKSPACE, "..", "shared"))
    ap.add_argument("--bin", default=None, help="built tables_bench binary")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="both libraries (default: all cores)")
    ap.add_argument("--dnn", action="store_true", help="also train mallard's DNN on ClaMP")
    a = ap.parse_args()
    shared = os.path.abspath(a.shared)
    binary = a.bin
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "mallard-gbdt", "--example",
                        "tables_bench"], cwd=WORKSPACE, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(WORKSPACE, "target"))
        binary = os.path.join(target, "release", "examples", "tables_bench")

    XX, yy = big_data(shared)
    fold = big_folds(yy)
    with tempfile.NamedTemporaryFile("w", suffix=".folds", delete=False) as f:
        f.write("\n".join(map(str, fold)) + "\n")
        folds_file = f.name

    lgb, mal = {}, {}
    for _ in range(a.repeat):
        for name in ("raw", "integrated"):
            lgb.setdefault(f"ClaMP {name}", []).append(lgb_clamp(shared, name, a.threads))
        lgb.setdefault("BIG 2015", []).append(lgb_big(XX, yy, fold, a.threads))
        for key, r in mallard_runs(binary, shared, folds_file, a.threads, a.dnn).items():
            mal.setdefault(key, []).append(r)
    os.unlink(folds_file)

    def med(runs, key):
        return statistics.median(r[key] for r in runs)

    print(f"lightgbm {lightgbm.__version__}, cpus {os.cpu_count()}, threads "
          f"{a.threads or 'default'}, median of {a.repeat} runs (metrics are identical across runs)")
    print()
    hdr = "| dataset | model | ROC AUC | TPR@1%FPR | TPR@0.1%FPR | accuracy | fit s |"
    print(hdr)
    print("|---|---|---:|---:|---:|---:|---:|")
    for ds in ("ClaMP raw", "ClaMP integrated"):
        rows = [("LightGBM (defaults)", lgb[ds])]
        rows += [(m, runs) for (d, m), runs in sorted(mal.items()) if d == ds]
        for model, runs in rows:
            print(f"| {ds} | {model} | {med(runs, 'roc_auc'):.6f} | {med(runs, 'tpr_at_1pct_fpr'):.6f} | "
                  f"{med(runs, 'tpr_at_0_1pct_fpr'):.6f} | {med(runs, 'accuracy'):.6f} | "
                  f"{med(runs, 'train_seconds'):.3f} |")
    print()
    print("| BIG 2015 (5-fold, pooled OOF) | accuracy | macro-F1 | log loss | fit s (5 folds) |")
    print("|---|---:|---:|---:|---:|")
    rows = [("LightGBM (defaults)", lgb["BIG 2015"])]
    rows += [(m, runs) for (d, m), runs in sorted(mal.items()) if d == "BIG 2015"]
    for model, runs in rows:
        print(f"| {model} | {med(runs, 'accuracy'):.6f} | {med(runs, 'macro_f1'):.6f} | "
              f"{med(runs, 'log_loss'):.6f} | {med(runs, 'train_seconds'):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
