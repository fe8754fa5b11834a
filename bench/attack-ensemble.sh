#!/usr/bin/env bash
# Ensembles across feature families as a defence (issue 15): the trees of bench/attack.sh's
# split stacked with trees on a family of features the edits cannot reach (opcodes of the code
# reached from the entry points: every edit keeps the code sections' bytes and the entry
# point), weighted by `mallard stack` on out-of-fold predictions of the same training side,
# then attacked and counted on the held-out benign files exactly as the trees alone.
#
#   FEATURES=ember-v2-hardened bash bench/attack.sh      (first: the split, its rows, its trees)
#   bash bench/static-detectors.sh opcodes                (first: opcode rows of files <= 256 KB)
#   FEATURES=ember-v2-hardened bash bench/attack-ensemble.sh    (env: FAMILY=opcodes WORK=...)
#   KEEP=1 ...                                            (keep the logistic weighting even where
#        the trees alone do better out of fold: `mallard stack --keep-weighting`)
#
# The family's rows exist for files of at most 256 KB only, so the stacker is fitted on the
# training rows both members have (the trees themselves are those of the whole training side).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/mallard/target}/release/mallard}
WORK=${WORK:-$HOME/.cache/mallard/attack}
FEATURES=${FEATURES:-ember-v2-hardened}
FAMILY=${FAMILY:-opcodes}
KEEP=${KEEP:-0}
DETECTORS=${DETECTORS:-$HOME/.cache/mallard/static-detectors}
TREES=${TREES:---n-estimators 600 --lr 0.05 --num-leaves 63 --feature-fraction 0.5 --min-data-in-leaf 40}
SPLIT=${SPLIT:-$WORK/$FEATURES}
[ -x "$BIN" ] || { echo "no mallard binary at $BIN: run cargo build --release first" >&2; exit 2; }
[ -f "$SPLIT/model.mallard" ] || { echo "no trees in $SPLIT: run FEATURES=$FEATURES bash bench/attack.sh first" >&2; exit 2; }
for side in malicious benign; do
    [ -f "$DETECTORS/$side-$FAMILY.jsonl.gz" ] ||
        { echo "no $FAMILY rows in $DETECTORS: run bash bench/static-detectors.sh $FAMILY first" >&2; exit 2; }
done
OUT=$SPLIT/ensemble-$FAMILY
mkdir -p "$OUT"

# Out-of-fold predictions of the main trees on their own training rows (same settings,
# --balance-kinds as in bench/attack.sh: EMBER columns).
# shellcheck disable=SC2086
[ -s "$OUT/cv-trees.jsonl" ] ||
    "$BIN" cv --dataset "ember:$SPLIT/train-malicious.jsonl.gz" --dataset "ember:$SPLIT/train-benign.jsonl.gz" \
        --model gbdt $TREES --balance-kinds 1 --predictions "$OUT/cv-trees.jsonl" --quiet | tail -3
STACK=$OUT/stack.mallard; KEEPING=()
[ "$KEEP" = 1 ] && STACK=$OUT/stack-kept.mallard && KEEPING=(--keep-weighting)

# The family's rows of the training side only (none of the held-out groups), and the groups
# of every training row for the stacker's own folds.
python3 - "$SPLIT" "$DETECTORS" "$FAMILY" "$OUT" <<'PY'
import gzip, json, sys
split, det, fam, out = sys.argv[1:]
held = set()
for side in ("malicious", "benign"):
    held |= {l.strip().lower() for l in open(f"{split}/test-{side}.txt") if l.strip()}
groups = {}
for side in ("malicious", "benign"):
    with gzip.open(f"{split}/train-{side}.jsonl.gz", "rt") as f:
        for line in f:
            r = json.loads(line)
            groups[r["sha256"].lower()] = r.get("group") or (
                "family:" + r["avclass"] if r.get("avclass") else "sha:" + r["sha256"])
    n = 0
    with gzip.open(f"{det}/{side}-{fam}.jsonl.gz", "rt") as f, \
            gzip.open(f"{out}/train-{side}-{fam}.jsonl.gz", "wt") as o:
        for line in f:
            sha = json.loads(line)["sha256"].lower()
            if sha in groups and sha not in held:
                o.write(line)
                n += 1
    print(f"{fam}: {n} {side} training rows")
with open(f"{out}/groups.tsv", "w") as g:
    g.write("name\tgroup\n")
    for sha, grp in sorted(groups.items()):
        g.write(f"{sha}\t{grp}\n")
PY
# shellcheck disable=SC2086
[ -f "$OUT/$FAMILY.mallard" ] ||
    "$BIN" train --dataset "ember:$OUT/train-malicious-$FAMILY.jsonl.gz" --dataset "ember:$OUT/train-benign-$FAMILY.jsonl.gz" \
        --model gbdt $TREES --out "$OUT/$FAMILY.mallard" --quiet
# shellcheck disable=SC2086
[ -s "$OUT/cv-$FAMILY.jsonl" ] ||
    "$BIN" cv --dataset "ember:$OUT/train-malicious-$FAMILY.jsonl.gz" --dataset "ember:$OUT/train-benign-$FAMILY.jsonl.gz" \
        --model gbdt $TREES --predictions "$OUT/cv-$FAMILY.jsonl" --quiet | tail -3
"$BIN" stack --member "$SPLIT/model.mallard=$OUT/cv-trees.jsonl" --member "$OUT/$FAMILY.mallard=$OUT/cv-$FAMILY.jsonl" \
    --groups "$OUT/groups.tsv" --calibrate-fpr 0.01 "${KEEPING[@]}" --out "$STACK"
# The same attack and false-positive count as the trees alone.
MODEL_FILE=$STACK bash bench/attack.sh
