#!/usr/bin/env bash
# Rebuilds models/default-pe.mallard: boosted trees on EMBER v2 features of the real malware in
# ../shared/data/pe-corpus and the benign corpus that corpus/benign/build.sh downloads.
#
#   bash models/build-default-pe.sh [MALLARD_BINARY]
#   OUT=/tmp/pe.mallard bash models/build-default-pe.sh    (elsewhere; the rebuild test does this)
#
# Steps: build (or reuse) the benign corpus; extract its EMBER v2 raw features with mallard;
# label and group them by package; check that nothing held out (EXCLUDE-sha256.txt) is in
# either side; train with the settings below and calibrate the threshold on grouped
# out-of-fold predictions for 1% FPR. Then `cargo build --release` embeds the new model.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/mallard/target}/release/mallard}
SHARED=${SHARED:-../shared}
BENIGN=${BENIGN:-$HOME/.cache/mallard/benign-corpus}
OUT=${OUT:-models/default-pe.mallard}
MALWARE=$SHARED/data/pe-corpus/malware-ember-v2-raw.jsonl.gz
EXCLUDE=$SHARED/data/pe-corpus/EXCLUDE-sha256.txt
[ -x "$BIN" ] || { echo "no mallard binary at $BIN: run cargo build --release first" >&2; exit 2; }
[ -f "$EXCLUDE" ] || { echo "missing $EXCLUDE" >&2; exit 2; }

bash corpus/benign/build.sh "$BENIGN"
if [ ! -s "$BENIGN/ember-raw.jsonl" ] || [ "$BENIGN/MANIFEST.tsv" -nt "$BENIGN/ember-raw.jsonl" ]; then
    rm -f "$BENIGN/ember-raw.jsonl"
    "$BIN" features "$BENIGN/files" --set ember-v2 --raw --out "$BENIGN/ember-raw.jsonl" || true
fi
python3 corpus/label-ember.py "$BENIGN/ember-raw.jsonl" "$BENIGN/MANIFEST.tsv" benign "$BENIGN/benign-ember.jsonl.gz"

# Nothing held out may be trained on.
python3 - "$EXCLUDE" "$MALWARE" "$BENIGN/benign-ember.jsonl.gz" <<'PY'
import gzip, json, sys
held = {l.split()[0].lower() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")}
for path in sys.argv[2:]:
    bad = [json.loads(l)["sha256"] for l in gzip.open(path, "rt") if json.loads(l)["sha256"].lower() in held]
    if bad:
        sys.exit(f"{path}: {len(bad)} held-out files, e.g. {bad[0]}")
print(f"no held-out file among the training rows ({len(held)} hashes checked)")
PY

"$BIN" train \
    --dataset "ember:$MALWARE" --dataset "ember:$BENIGN/benign-ember.jsonl.gz" \
    --manifest "$SHARED/data/pe-corpus/MANIFEST.tsv" --manifest "$BENIGN/MANIFEST.tsv" \
    --model gbdt ${TRAIN_OPTS:---n-estimators 600 --lr 0.05 --num-leaves 63 --feature-fraction 0.5 --min-data-in-leaf 40 --balance-kinds 1} \
    --calibrate-fpr 0.01 --out "$OUT"
