"""Golden numbers for mallard-svm from scikit-learn's SVC(kernel="precomputed").

Run with scikit-learn 1.9.1 (numpy): `python gen_golden.py > sklearn.json`.
Each case: random sets of ids, the exponentiated Tanimoto kernel computed here in numpy,
labels, per-sample weights (sklearn multiplies C by them), and sklearn's dual coefficients,
intercept and decision values on the training sets and on held-out sets.
"""
import json
import sys

import numpy as np
import sklearn
from sklearn.svm import SVC


def tanimoto(a, b):
    a, b = set(a), set(b)
    u = len(a | b)
    return 1.0 if u == 0 else len(a & b) / u


def kmat(xs, ys, gamma):
    return np.array([[np.exp(-gamma * (1.0 - tanimoto(a, b))) for b in ys] for a in xs])


def random_sets(rng, n, vocab):
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 12))
        out.append(sorted(int(v) for v in rng.choice(vocab, size=k, replace=False)))
    return out


def case(seed, n_train, n_test, vocab, gamma, c, weighted):
    rng = np.random.default_rng(seed)
    sets = random_sets(rng, n_train + n_test, vocab)
    # Label: mostly "holds two of the ids 0-4", with 10% of labels flipped (not separable).
    y = np.array([int(len(set(s) & {0, 1, 2, 3, 4}) >= 2) for s in sets])
    flip = rng.random(len(y)) < 0.1
    y = np.where(flip, 1 - y, y)
    tr, te = sets[:n_train], sets[n_train:]
    ytr = y[:n_train]
    w = rng.uniform(0.5, 2.0, size=n_train) if weighted else np.ones(n_train)
    ktr = kmat(tr, tr, gamma)
    kte = kmat(te, tr, gamma)
    m = SVC(kernel="precomputed", C=c, tol=1e-10, shrinking=False, max_iter=-1)
    m.fit(ktr, ytr, sample_weight=w)
    coef = np.zeros(n_train)
    coef[m.support_] = m.dual_coef_[0]
    return {
        "gamma": gamma,
        "c": c,
        "train_sets": tr,
        "test_sets": te,
        "labels": [int(v) for v in ytr],
        "weights": [float(v) for v in w],
        "kernel": ktr.tolist(),
        "coef": coef.tolist(),
        "intercept": float(m.intercept_[0]),
        "decision_train": m.decision_function(ktr).tolist(),
        "decision_test": m.decision_function(kte).tolist(),
    }


def main():
    out = {
        "sklearn": sklearn.__version__,
        "cases": [
            case(1, 60, 20, 25, 2.0, 1.0, True),
            case(2, 50, 20, 20, 3.0, 100.0, False),
        ],
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
