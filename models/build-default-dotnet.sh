#!/usr/bin/env bash
# Rebuilds models/default-dotnet.mallard and models/default-dotnet.json: the built-in PE
# model's .NET specialist. Boosted trees on the `dotnet` feature set (a .NET assembly's
# metadata) of every binary there is (the benign corpus, the malware of at most 256 KB), and
# the intercept and weight with which they add to the built-in PE model's logit on .NET
# files, fitted on out-of-fold predictions of both over one set of grouped folds.
#
#   bash models/build-default-dotnet.sh [MALLARD_BINARY]
#   OUT=/tmp/dotnet bash models/build-default-dotnet.sh   (writes /tmp/dotnet.mallard and .json)
#
# Steps: the hardened EMBER rows of models/build-default-pe.sh (made by it when absent);
# 5-fold cross-validation of the built-in PE model's recipe on them, writing its folds (by
# sha256) and out-of-fold predictions; `dotnet` features of every binary, labelled and
# grouped as the EMBER rows; cross-validation of the .NET trees on the same folds (rows that
# are not .NET are marked outside its domain); the .NET trees trained on every row; `mallard
# stack` of the built-in model and the .NET trees on those predictions, which fits the
# specialist's intercept and weight (cross-fitted figures printed). About 20 minutes on 2
# cores, most of it the first cross-validation.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/mallard/target}/release/mallard}
SHARED=${SHARED:-../shared}
BENIGN=${BENIGN:-$HOME/.cache/mallard/benign-corpus}
PE_WORK=${PE_WORK:-$HOME/.cache/mallard/default-pe}
WORK=${WORK:-$HOME/.cache/mallard/default-dotnet}
OUT=${OUT:-models/default-dotnet}
# The built-in PE model's settings (models/build-default-pe.sh), for its out-of-fold scores.
PE_OPTS="--n-estimators 600 --lr 0.05 --num-leaves 63 --feature-fraction 0.5 --min-data-in-leaf 40 --balance-kinds 1"
# The .NET trees: the same settings but the kind weighting, which reads EMBER columns.
DOTNET_OPTS="--n-estimators 600 --lr 0.05 --num-leaves 63 --feature-fraction 0.5 --min-data-in-leaf 40"
[ -x "$BIN" ] || { echo "no mallard binary at $BIN: run cargo build --release first" >&2; exit 2; }

if [ ! -s "$PE_WORK/malware.jsonl.gz" ] || [ ! -s "$PE_WORK/benign.jsonl.gz" ]; then
    OUT=$(mktemp /tmp/mallard-pe-XXXXXX.mallard) bash models/build-default-pe.sh "$BIN"
fi
mkdir -p "$WORK"
TMP=$(mktemp -d /tmp/mallard-default-dotnet-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# The built-in recipe's out-of-fold scores, and the folds every later step reads
# (REUSE=1 keeps those of an earlier run).
if [ -z "${REUSE:-}" ] || [ ! -s "$WORK/cv-pe.jsonl" ] || [ ! -s "$WORK/folds.tsv" ]; then
    # shellcheck disable=SC2086
    "$BIN" cv --dataset "ember:$PE_WORK/malware.jsonl.gz" --dataset "ember:$PE_WORK/benign.jsonl.gz" \
        --model gbdt $PE_OPTS --write-folds "$WORK/folds.tsv" --predictions "$WORK/cv-pe.jsonl" --quiet
fi

# .NET features of every binary there is (malware unzipped into a temporary folder, never
# executed, deleted on exit), labelled and grouped by the manifests as the EMBER rows are.
unzip -q -P infected "$SHARED/data/pe-corpus/malware-small.zip" -d "$TMP/malware"
"$BIN" features "$TMP/malware" --set dotnet --out "$TMP/malware.jsonl" --quiet
"$BIN" features "$BENIGN/files" --set dotnet --out "$TMP/benign.jsonl" --quiet
python3 corpus/label-ember.py "$TMP/malware.jsonl" "$SHARED/data/pe-corpus/MANIFEST.tsv" malicious "$WORK/malware-dotnet.jsonl.gz"
python3 corpus/label-ember.py "$TMP/benign.jsonl" "$BENIGN/MANIFEST.tsv" benign "$WORK/benign-dotnet.jsonl.gz"
rm -rf "$TMP/malware"

DATA="--dataset ember:$WORK/malware-dotnet.jsonl.gz --dataset ember:$WORK/benign-dotnet.jsonl.gz"
# shellcheck disable=SC2086
"$BIN" cv $DATA --model gbdt $DOTNET_OPTS --fold-file "$WORK/folds.tsv" \
    --predictions "$WORK/cv-dotnet.jsonl" --quiet
# shellcheck disable=SC2086
"$BIN" train $DATA --manifest "$SHARED/data/pe-corpus/MANIFEST.tsv" --manifest "$BENIGN/MANIFEST.tsv" \
    --model gbdt $DOTNET_OPTS --out "$OUT.mallard" --quiet
"$BIN" stack --member models/default-pe.mallard="$WORK/cv-pe.jsonl" \
    --member "$OUT.mallard=$WORK/cv-dotnet.jsonl" --fold-file "$WORK/folds.tsv" \
    --out "$WORK/stack.mallard" | tee "$WORK/stack.txt"
# The specialist's two numbers, and the cross-fitted figures they were kept on.
"$BIN" inspect "$WORK/stack.mallard" --json | python3 -c '
import json, sys
m = json.load(sys.stdin)
line = [l for l in open(sys.argv[1]) if l.startswith("specialists ")]
line or sys.exit("the .NET trees did not help out of fold: no specialist")
sp = json.loads(line[0].split("): ", 1)[1])
out = {"intercept": sp[0]["intercept"], "weight": sp[0]["weight"],
       "cross_fitted": m["metrics"]["cross_fitted"], "rows": m["metrics"]["rows"]}
print(json.dumps(out, indent=1))' "$WORK/stack.txt" > "$OUT.json"
cat "$OUT.json"
