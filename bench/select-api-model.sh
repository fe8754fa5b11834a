#!/usr/bin/env bash
# Chooses the built-in API model's kind and settings the honest way: grouped 5-fold
# cross-validation on MalBehavD-V1's *training split only* (models/data/malbehavd-v1/train.csv,
# the file the model is trained on), four CV seeds, no test row seen. Prints one line per
# candidate: mean ROC AUC, mean TPR at 1% FPR, mean accuracy. The test split is scored once,
# afterwards, by `mallard eval` (README).
#
#   bash bench/select-api-model.sh            # svm grid + ngram (about 5 minutes on 2 cores)
#   MALLARD=path/to/mallard bash bench/select-api-model.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MALLARD=${MALLARD:-${CARGO_TARGET_DIR:-target}/release/mallard}
DATA=malbehavd:models/data/malbehavd-v1/train.csv
SEEDS=${SEEDS:-"42 1 2 3"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # name, then cv flags
  local name=$1; shift
  for s in $SEEDS; do
    "$MALLARD" cv -q --dataset "$DATA" --seed "$s" --report "$tmp/$name-$s.json" "$@" >/dev/null
  done
  python3 - "$tmp" "$name" $SEEDS <<'PY'
import json, sys
d, name, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
r = [json.load(open(f"{d}/{name}-{s}.json")) for s in seeds]
mean = lambda xs: sum(xs) / len(xs)
auc = mean([x["roc_auc"] for x in r])
tpr = mean([x["tpr_at_fpr"]["0.01"] for x in r])
acc = mean([x["accuracy"] for x in r])
print(f"{name:<24} AUC {auc:.4f}  TPR@1% {tpr:.3f}  acc {acc:.3f}", flush=True)
PY
}

echo "grouped 5-fold CV on the training split, seeds: $SEEDS ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
for g in 1 2 3 5; do
  for c in 1 3 10; do
    run "svm-g$g-c$c" --model svm --svm-gamma $g --svm-c $c
  done
done
run ngram-default --model ngram
run ngram-n2-c10 --model ngram --ngram-max 2 --ngram-c 10
