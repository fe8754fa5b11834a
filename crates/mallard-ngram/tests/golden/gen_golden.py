#!/usr/bin/env python3
"""Writes tests/golden/sklearn.json: scikit-learn's TfidfVectorizer and
LogisticRegression outputs on small hand-made API sequences, the independent
truth for mallard-ngram's tests.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install scikit-learn
    /tmp/venv/bin/python gen_golden.py   # from this directory
"""
import json
import random

import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

# Hand-made sequences: exact case and underscores matter, tokens repeat inside a
# document (counts > 1), one document is empty-ish (single token).
VEC_DOCS = [
    ["NtCreateFile", "NtWriteFile", "NtClose", "NtCreateFile", "NtWriteFile"],
    ["LdrLoadDll", "LdrGetProcedureAddress", "LdrGetProcedureAddress", "NtClose"],
    ["RegOpenKeyExW", "RegQueryValueExW", "RegCloseKey", "__exception__"],
    ["ntcreatefile", "NtClose"],
    ["CryptEncrypt"],
    ["NtCreateFile", "NtWriteFile", "NtClose", "RegOpenKeyExW", "RegQueryValueExW"],
    ["__exception__", "__exception__", "NtTerminateProcess"],
]
VEC_QUERIES = [
    ["NtCreateFile", "NtWriteFile", "UnknownApi", "NtClose"],
    ["UnknownApi"],
    ["RegOpenKeyExW", "RegQueryValueExW", "RegCloseKey", "NtCreateFile", "NtWriteFile", "NtClose"],
]
VEC_CASES = {
    "default_1_3": dict(ngram_range=(1, 3)),
    "range_2_4_min_df_2_sublinear": dict(ngram_range=(2, 4), min_df=2, sublinear_tf=True),
    "binary_counts": dict(ngram_range=(1, 2), binary=True, use_idf=False, norm=None),
    "raw_counts_l1_nosmooth": dict(ngram_range=(1, 1), smooth_idf=False, norm="l1"),
}

APIS = ["NtCreateFile", "NtWriteFile", "NtReadFile", "NtClose", "LdrLoadDll",
        "LdrGetProcedureAddress", "RegOpenKeyExW", "RegSetValueExW", "RegCloseKey",
        "CryptEncrypt", "DeleteFileW", "CreateRemoteThread", "WriteProcessMemory",
        "NtAllocateVirtualMemory", "GetSystemTimeAsFileTime", "__exception__"]


def join(docs):
    return [" ".join(d) for d in docs]


def make_corpus(rng, n, n_classes):
    """Random API sequences whose class shifts which APIs are likely."""
    docs, labels = [], []
    for i in range(n):
        c = i % n_classes
        length = rng.randint(3, 12)
        w = [1.0] * len(APIS)
        for j in range(len(APIS)):
            if j % n_classes == c:
                w[j] = 2.5
        docs.append(rng.choices(APIS, weights=w, k=length))
        labels.append(c)
    return docs, labels


def main():
    out = {"sklearn_version": sklearn.__version__, "vectorizer": [], "logreg": []}
    for name, kw in VEC_CASES.items():
        v = TfidfVectorizer(token_pattern=r"\S+", lowercase=False, **kw)
        x = v.fit_transform(join(VEC_DOCS)).toarray()
        q = v.transform(join(VEC_QUERIES)).toarray()
        case = {
            "name": name,
            "params": {k: list(val) if isinstance(val, tuple) else val for k, val in kw.items()},
            "vocab": list(v.get_feature_names_out()),
            "idf": list(v.idf_) if v.use_idf else None,
            "train": x.tolist(),
            "queries": q.tolist(),
        }
        out["vectorizer"].append(case)
    out["vectorizer_docs"] = VEC_DOCS
    out["vectorizer_queries"] = VEC_QUERIES

    rng = random.Random(7)
    for name, n_classes, n, C, cw in [
        ("binary_c1", 2, 40, 1.0, None),
        ("binary_c10_balanced", 2, 30, 10.0, "balanced"),
        ("multi3_c1", 3, 45, 1.0, None),
        ("multi3_c0.3_balanced", 3, 36, 0.3, "balanced"),
    ]:
        docs, labels = make_corpus(rng, n, n_classes)
        if cw == "balanced":
            # make the classes unbalanced so the weights matter
            keep = [i for i in range(n) if labels[i] != 1 or (i // n_classes) % 3 == 0]
            docs = [docs[i] for i in keep]
            labels = [labels[i] for i in keep]
        tests, _ = make_corpus(rng, 8, n_classes)
        vec = TfidfVectorizer(ngram_range=(1, 3), token_pattern=r"\S+", lowercase=False)
        xtr = vec.fit_transform(join(docs))
        xte = vec.transform(join(tests))
        clf = LogisticRegression(C=C, solver="lbfgs", max_iter=5000, tol=1e-8,
                                 class_weight=cw).fit(xtr, labels)
        out["logreg"].append({
            "name": name,
            "n_classes": n_classes,
            "C": C,
            "class_weight": cw,
            "docs": docs,
            "labels": labels,
            "tests": tests,
            "n_features": int(xtr.shape[1]),
            "coef": clf.coef_.tolist(),
            "intercept": clf.intercept_.tolist(),
            "proba_train": clf.predict_proba(xtr).tolist(),
            "proba_test": clf.predict_proba(xte).tolist(),
            "n_iter": int(clf.n_iter_[0]),
        })
    with open("sklearn.json", "w") as f:
        json.dump(out, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
