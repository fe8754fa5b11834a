#!/usr/bin/env python3
"""Writes tests/fixtures/lightgbm_golden.json: LightGBM (defaults) raw scores on a synthetic
table that tests/golden.rs rebuilds bit-for-bit with the same generator, so the Rust learner
is checked against LightGBM without shipping any data set.

The table exercises what matters for agreement: a feature with more distinct values than
max_bin (quantile binning), rare values (min_data_in_bin), zero and negative values (the zero
bin), NaN (missing-value direction), an unsplittable rare flag (feature pre-filter), plus
binary and 3-class objectives. Every value is exactly representable in f32.

  /tmp/lgb/bin/python crates/mallard-gbdt/bench/make_golden.py   # lightgbm 4.x
"""
import json
import os

import numpy as np
import lightgbm
from lightgbm import LGBMClassifier

MASK = (1 << 64) - 1


class Lcg:
    """Same generator as tests/golden.rs: 64-bit LCG, top 31 bits."""

    def __init__(self, seed):
        self.s = seed & MASK

    def next(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & MASK
        return self.s >> 33

    def below(self, n):
        return self.next() % n


def table(n=3000, seed=2015):
    r = Lcg(seed)
    X = np.zeros((n, 6), dtype=np.float64)
    y2 = np.zeros(n, dtype=int)
    y3 = np.zeros(n, dtype=int)
    for i in range(n):
        a = r.below(4000)                     # > 255 distinct: quantile bins
        b = r.below(256) / 64.0               # 0..4 step 1/64, NaN 10 %
        b_nan = r.below(10) == 0
        c = r.below(7) if r.below(3) else 0   # small ints, many zeros
        d = r.below(101) - 50                 # negatives, zero, positives
        e = 1.0 if r.below(300) == 0 else 0.0  # rare flag: pre-filtered
        f = r.below(1000) / 8.0               # noise
        noise = r.below(1000) / 1000.0
        s = (a / 4000.0) * 2.0 + (0.0 if b_nan else (b - 2.0) ** 2 * 0.4) + (0.6 if b_nan else 0.0) \
            + 0.15 * c - 0.01 * d + 1.5 * noise
        y2[i] = 1 if s > 2.4 else 0
        y3[i] = 0 if s < 2.0 else (1 if s < 2.8 else 2)
        X[i] = [a, np.nan if b_nan else b, c, d, e, f]
    return X, y2, y3


def main():
    X, y2, y3 = table()
    probes = X[:300]
    out = dict(lightgbm=lightgbm.__version__, n=len(X), n_probe=len(probes))
    m = LGBMClassifier(verbose=-1).fit(X, y2)
    out["binary_raw"] = m.predict(probes, raw_score=True).tolist()
    # TreeSHAP contributions (+ bias column) of the first 20 probe rows
    out["binary_contrib"] = m.predict(probes[:20], pred_contrib=True).ravel().tolist()
    m = LGBMClassifier(verbose=-1).fit(X, y3)
    out["multiclass_raw"] = m.predict(probes, raw_score=True).ravel().tolist()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                        "lightgbm_golden.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", os.path.abspath(path), "binary positives", int(y2.sum()), "classes",
          np.bincount(y3).tolist())


if __name__ == "__main__":
    main()
