#!/usr/bin/env bash
# Rebuilds models/default-pe.mallard: boosted trees on hardened EMBER v2 features
# (ember-v2-hardened: the file without its overlay, DOS stub, slack and free header fields;
# issue 15) of the real malware in ../shared/data/pe-corpus and the benign corpus that
# corpus/benign/build.sh downloads. AUGMENT=K adds K random mutants of every malware binary
# and one of as many benign files (training on mutants; off: measured not to help, see
# docs/decisions.md).
#
#   bash models/build-default-pe.sh [MALLARD_BINARY]
#   OUT=/tmp/pe.mallard bash models/build-default-pe.sh    (elsewhere; the rebuild test does this)
#
# Steps: build (or reuse) the benign corpus; extract its EMBER v2 raw features with mallard;
# label and group them by package; check that nothing held out (EXCLUDE-sha256.txt) is in
# either side; re-extract every binary there is (benign files, malware of at most 256 KB,
# unzipped into a temporary folder and deleted) with the hardened set; with AUGMENT > 0,
# write AUGMENT random mutants of each malware binary and one of as many benign files
# (`mallard mutate`, 4 checked edits each), labelled and grouped as their originals; train
# with the settings below and calibrate the threshold on grouped out-of-fold predictions for
# 1% FPR. Then `cargo build --release` embeds the new model.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/mallard/target}/release/mallard}
SHARED=${SHARED:-../shared}
BENIGN=${BENIGN:-$HOME/.cache/mallard/benign-corpus}
OUT=${OUT:-models/default-pe.mallard}
WORK=${WORK:-$HOME/.cache/mallard/default-pe}
AUGMENT=${AUGMENT:-0}
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

mkdir -p "$WORK"
TMP=$(mktemp -d /tmp/mallard-default-pe-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# Hardened features of every binary there is; bigger malware keeps EMBER's whole-file objects,
# masked where they can be (corpus/harden-rows.py).
if [ ! -s "$BENIGN/ember-hardened-raw.jsonl" ] || [ "$BENIGN/MANIFEST.tsv" -nt "$BENIGN/ember-hardened-raw.jsonl" ]; then
    rm -f "$BENIGN/ember-hardened-raw.jsonl"
    "$BIN" features "$BENIGN/files" --set ember-v2-hardened --raw --out "$BENIGN/ember-hardened-raw.jsonl" || true
fi
unzip -q -P infected "$SHARED/data/pe-corpus/malware-small.zip" -d "$TMP/malware"
"$BIN" features "$TMP/malware" --set ember-v2-hardened --raw --out "$TMP/malware-raw.jsonl" --quiet || true
python3 corpus/harden-rows.py "$BENIGN/benign-ember.jsonl.gz" "$BENIGN/ember-hardened-raw.jsonl" "$WORK/benign.jsonl.gz"
python3 corpus/harden-rows.py "$MALWARE" "$TMP/malware-raw.jsonl" "$WORK/malware.jsonl.gz"
MAL_ROWS=$WORK/malware.jsonl.gz
BEN_ROWS=$WORK/benign.jsonl.gz
if [ "$AUGMENT" -gt 0 ]; then
    # Mutants' bytes come from a benign file of the corpus; benign files to mutate are drawn
    # with a fixed seed among those of at most 4 MiB, as many as there are malware binaries.
    FILL=$(awk -F'\t' 'NR > 1 && $3 > 300000 && $3 < 3000000 { n++; if (n == 7) { print $1; exit } }' "$BENIGN/MANIFEST.tsv")
    mkdir -p "$TMP/benign-pick"
    python3 - "$BENIGN/MANIFEST.tsv" "$BENIGN/files" "$TMP/benign-pick" "$(ls "$TMP/malware" | wc -l)" <<'PY'
import csv, os, random, sys
rows = sorted((r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t") if int(r["size"]) <= 4 << 20),
              key=lambda r: r["name"])
random.Random(0).shuffle(rows)
for r in rows[: int(sys.argv[4])]:
    os.symlink(os.path.join(sys.argv[2], r["name"]), os.path.join(sys.argv[3], r["name"]))
PY
    "$BIN" mutate "$TMP/malware" --out "$TMP/mut-mal" --per-file "$AUGMENT" --steps 4 --benign "$BENIGN/files/$FILL" --seed 1 --quiet
    rm -rf "$TMP/malware"
    "$BIN" mutate "$TMP"/benign-pick/* --out "$TMP/mut-ben" --per-file 1 --steps 4 --benign "$BENIGN/files/$FILL" --seed 2 --quiet
    "$BIN" features "$TMP/mut-mal" --set ember-v2-hardened --raw --out "$TMP/mut-mal.jsonl" --quiet || true
    rm -rf "$TMP/mut-mal"
    "$BIN" features "$TMP/mut-ben" --set ember-v2-hardened --raw --out "$TMP/mut-ben.jsonl" --quiet || true
    rm -rf "$TMP/mut-ben"
    python3 corpus/mutant-rows.py "$WORK/malware.jsonl.gz" "$TMP/mut-mal.jsonl" "$SHARED/data/pe-corpus/MANIFEST.tsv" "$WORK/malware-aug.jsonl.gz"
    python3 corpus/mutant-rows.py "$WORK/benign.jsonl.gz" "$TMP/mut-ben.jsonl" "$BENIGN/MANIFEST.tsv" "$WORK/benign-aug.jsonl.gz"
    MAL_ROWS=$WORK/malware-aug.jsonl.gz
    BEN_ROWS=$WORK/benign-aug.jsonl.gz
fi
rm -rf "$TMP/malware"

"$BIN" train \
    --dataset "ember:$MAL_ROWS" --dataset "ember:$BEN_ROWS" \
    --manifest "$SHARED/data/pe-corpus/MANIFEST.tsv" --manifest "$BENIGN/MANIFEST.tsv" \
    --model gbdt ${TRAIN_OPTS:---n-estimators 600 --lr 0.05 --num-leaves 63 --feature-fraction 0.5 --min-data-in-leaf 40 --balance-kinds 1} \
    --calibrate-fpr 0.01 --out "$OUT"
