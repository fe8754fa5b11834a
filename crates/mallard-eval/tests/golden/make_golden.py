#!/usr/bin/env python3
"""Generate golden metric values for mallard-eval from scikit-learn.

Usage (scikit-learn 1.9.1 was used for the committed file):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install scikit-learn
    /tmp/venv/bin/python make_golden.py > metrics.json

Scores are drawn as float32 and written as the exact decimal of that float32, so
Rust reads bit-identical inputs; sklearn then sees them as float64 (log_loss
therefore clips at float64 eps).
"""
import json
import warnings

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

warnings.simplefilter("ignore")


def f32list(a):
    return [float(x) for x in np.asarray(a, dtype=np.float32)]


def tpr_at_fpr(y, s, target):
    # Same definition as shared/baselines/keras_lstm_malbehavd.py.
    fpr, tpr, _ = roc_curve(y, s)
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def curve(y, s, drop):
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=drop)
    return [[float(a), float(b), float(c) if np.isfinite(c) else "inf"] for a, b, c in zip(fpr, tpr, thr)]


def binary_case(name, y, p, threshold=0.5, full_curve=True):
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float32)
    probs = np.stack([np.float32(1.0) - p, p], axis=1).astype(np.float32)
    pd = p.astype(np.float64)
    pred = (p >= np.float32(threshold)).astype(np.int64)
    prec, rec, f1, sup = precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=0)
    out = {
        "name": name,
        "labels": ["benign", "malicious"],
        "y_true": y.tolist(),
        # Rows are [1 - p, p] computed in float32; Rust rebuilds them from p.
        "p_pos": f32list(p),
        "positive": 1,
        "threshold": threshold,
        "accuracy": accuracy_score(y, pred),
        "confusion_matrix": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "precision": float(prec[1]),
        "recall": float(rec[1]),
        "f1": float(f1[1]),
        "macro_f1": float(f1_score(y, pred, average="macro")),
        "per_class": {"precision": prec.tolist(), "recall": rec.tolist(), "f1": f1.tolist(), "support": [int(v) for v in sup]},
        "log_loss": float(log_loss(y, probs.astype(np.float64), labels=[0, 1])),
    }
    if len(set(y.tolist())) == 2:
        out["roc_auc"] = float(roc_auc_score(y, pd))
        out["tpr_at_fpr"] = {"0.001": tpr_at_fpr(y, pd, 0.001), "0.01": tpr_at_fpr(y, pd, 0.01)}
        if full_curve:
            out["roc_curve"] = curve(y, pd, False)
        out["roc_curve_dropped"] = curve(y, pd, True)
    else:
        out["roc_auc"] = None
        out["tpr_at_fpr"] = None
    return out


def multi_case(name, y, probs, labels):
    y = np.asarray(y, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float32)
    k = probs.shape[1]
    pred = probs.argmax(axis=1)
    prec, rec, f1, sup = precision_recall_fscore_support(y, pred, labels=list(range(k)), zero_division=0)
    return {
        "name": name,
        "labels": labels,
        "y_true": y.tolist(),
        "probs": f32list(probs.reshape(-1)),
        "positive": None,
        "threshold": None,
        "accuracy": accuracy_score(y, pred),
        "confusion_matrix": confusion_matrix(y, pred, labels=list(range(k))).tolist(),
        "precision": None,
        "recall": None,
        "f1": None,
        "macro_f1": float(f1_score(y, pred, average="macro")),
        "per_class": {"precision": prec.tolist(), "recall": rec.tolist(), "f1": f1.tolist(), "support": [int(v) for v in sup]},
        "log_loss": float(log_loss(y, probs.astype(np.float64), labels=list(range(k)))),
        "roc_auc": float(roc_auc_score(y, probs.astype(np.float64), multi_class="ovr", average="macro")),
        "tpr_at_fpr": None,
    }


def main():
    rng = np.random.default_rng(20240611)
    cases = []
    # Ties across classes, scores at exact 0 and 1 (log-loss clipping), threshold hits.
    cases.append(binary_case(
        "binary_ties",
        [0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1],
        [0.1, 0.5, 0.5, 0.9, 0.3, 0.3, 0.0, 1.0, 0.7, 0.7, 0.5, 0.2],
    ))
    cases.append(binary_case("perfect", [0, 0, 0, 1, 1, 1, 1], [0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 0.99]))
    cases.append(binary_case("all_one_score", [0, 1, 0, 1, 1], [0.5] * 5))
    # Probability exactly 0 / 1 on the wrong class: log-loss clipping at float64 eps.
    cases.append(binary_case("confidently_wrong", [1, 0, 1, 0], [0.0, 1.0, 0.5, 0.25]))
    cases.append(binary_case("inverted", [1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]))
    # Imbalanced, coarse scores (many ties), custom threshold.
    n = 60
    y = (rng.random(n) < 0.1).astype(int)
    y[:2] = [1, 0]
    s = np.round(np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1), 2)
    cases.append(binary_case("imbalanced_threshold_0.3", y, s, threshold=0.3))
    # Large enough that FPR 0.1% and 1% are distinct points (1,500 negatives).
    y = np.r_[np.zeros(1500, int), np.ones(400, int)]
    s = 1 / (1 + np.exp(-rng.normal(3.0 * y - 1.5, 1.3)))
    s = np.round(s, 3)
    cases.append(binary_case("large", y, s, full_curve=False))
    # Single-class truth: AUC undefined.
    cases.append(binary_case("single_class", [1, 1, 1], [0.2, 0.6, 0.9]))
    # Three classes.
    n = 40
    y = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3)) + 1.5 * np.eye(3)[y]
    logits = np.round(logits, 1)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    cases.append(multi_case("three_class", y, p, ["benign", "trojan", "worm"]))
    print(json.dumps({"sklearn": sklearn.__version__, "cases": cases}, indent=None))


if __name__ == "__main__":
    main()
