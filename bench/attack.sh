#!/usr/bin/env bash
# Evasion of the default PE model's recipe by `mallard attack` on malware it never trained on
# (issue 15): the built-in model's training rows (shared/data/pe-corpus's EMBER v2 objects and
# the benign corpus) are split by group (malware family hint, benign project; one fifth of the
# groups held out, by a hash of the group's name), trees are trained on the rest with the
# built-in model's settings and its threshold calibration (1% FPR out of fold), and every
# held-out malware binary of malware-small.zip (<= 256 KB) is attacked with a query budget.
#
#   bash bench/attack.sh            (env: BUDGET=1000 STRATEGY=greedy BIN= SHARED= BENIGN= WORK=)
#   FEATURES=ember-v2-hardened bash bench/attack.sh     (the defence: features that leave out
#                                                        the regions the edits write to)
#   AUGMENT=2 ... bash bench/attack.sh                  (the defence: training on mutants;
#        AUG_ACTIONS=all AUG_STEPS=4 random edits each, AUG_BENIGN=1: benign files mutated too)
#   MONOTONE=additive ... bash bench/attack.sh          (the defence: trees whose score cannot
#        fall as counts an editor can only add to rise: sizes, imports, sections, strings;
#        or MONOTONE=COLUMNS as `train --monotone` takes them)
#   MAX_DELTA=1 ... bash bench/attack.sh                (the defence: bounded leaf outputs,
#        `train --max-delta-step`)
#   MODEL_FILE=M.mallard ... bash bench/attack.sh       (attack a model trained on this split
#        elsewhere, e.g. by bench/attack-ensemble.sh, instead of training one)
#
# Malware is unzipped into a temporary folder (password `infected`, never executed) and
# deleted at the end, mutants included. Prints the attack summary and the held-out benign
# files' false-positive rate; the JSON report goes beside the model, $WORK/$FEATURES/model*-attack.json.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/mallard/target}/release/mallard}
SHARED=${SHARED:-../shared}
BENIGN=${BENIGN:-$HOME/.cache/mallard/benign-corpus}
WORK=${WORK:-$HOME/.cache/mallard/attack}
BUDGET=${BUDGET:-1000}
STRATEGY=${STRATEGY:-greedy}
FEATURES=${FEATURES:-ember-v2}
AUGMENT=${AUGMENT:-0}
AUG_ACTIONS=${AUG_ACTIONS:-all}
AUG_STEPS=${AUG_STEPS:-4}
AUG_BENIGN=${AUG_BENIGN:-1}
MONOTONE=${MONOTONE:-}
MAX_DELTA=${MAX_DELTA:-}
# What an editor that only adds (sections, imports, bytes, strings) can only make larger.
[ "$MONOTONE" = additive ] && MONOTONE=general_size,general_vsize,general_imports,general_exports,general_symbols,section_count,section_zero_size,section_empty_name,section_rx,section_w,strings_numstrings,strings_printables,strings_paths,strings_urls,strings_registry,strings_MZ,datadirectories_IMPORT_TABLE_size
TREES=${TREES:---n-estimators 600 --lr 0.05 --num-leaves 63 --feature-fraction 0.5 --min-data-in-leaf 40 --balance-kinds 1}
[ -x "$BIN" ] || { echo "no mallard binary at $BIN: run cargo build --release first" >&2; exit 2; }
[ -f "$BENIGN/benign-ember.jsonl.gz" ] || { echo "no labelled benign corpus in $BENIGN: bash models/build-default-pe.sh" >&2; exit 2; }
mkdir -p "$WORK"
TMP=$(mktemp -d /tmp/mallard-attack-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
unzip -q -P infected "$SHARED/data/pe-corpus/malware-small.zip" -d "$TMP/all"
MALWARE_ROWS=$SHARED/data/pe-corpus/malware-ember-v2-raw.jsonl.gz
BENIGN_ROWS=$BENIGN/benign-ember.jsonl.gz
if [ "$FEATURES" = ember-v2-hardened ]; then
    # Re-extract every binary there is (benign corpus, malware <= 256 KB) with the hardened
    # set; rows of bigger malware keep EMBER's whole-file objects, masked where possible.
    [ -s "$WORK/benign-hardened-raw.jsonl" ] ||
        "$BIN" features "$BENIGN/files" --set ember-v2-hardened --raw --out "$WORK/benign-hardened-raw.jsonl" --quiet || true
    "$BIN" features "$TMP/all" --set ember-v2-hardened --raw --out "$TMP/malware-hardened-raw.jsonl" --force --quiet || true
    python3 corpus/harden-rows.py "$BENIGN_ROWS" "$WORK/benign-hardened-raw.jsonl" "$WORK/benign-hardened.jsonl.gz"
    python3 corpus/harden-rows.py "$MALWARE_ROWS" "$TMP/malware-hardened-raw.jsonl" "$WORK/malware-hardened.jsonl.gz"
    rm -f "$TMP/malware-hardened-raw.jsonl"
    MALWARE_ROWS=$WORK/malware-hardened.jsonl.gz
    BENIGN_ROWS=$WORK/benign-hardened.jsonl.gz
fi

SPLIT=$WORK/$FEATURES
mkdir -p "$SPLIT"
python3 - "$MALWARE_ROWS" "$BENIGN_ROWS" "$SHARED/data/pe-corpus/EXCLUDE-sha256.txt" "$SPLIT" <<'PY'
import gzip, hashlib, json, sys
mal, ben, exclude, work = sys.argv[1:]
held_out = {l.split()[0].lower() for l in open(exclude) if l.strip() and not l.startswith("#")}
def group(r):
    return r.get("group") or ("family:" + r["avclass"] if r.get("avclass") else "sha:" + r["sha256"])
def test_side(g):
    return int(hashlib.sha256(g.encode()).hexdigest(), 16) % 5 == 0
for src, name in [(mal, "malicious"), (ben, "benign")]:
    n = {True: 0, False: 0}
    with gzip.open(src, "rt") as f, gzip.open(f"{work}/train-{name}.jsonl.gz", "wt") as tr, \
            open(f"{work}/test-{name}.txt", "w") as te:
        for line in f:
            r = json.loads(line)
            if r["sha256"].lower() in held_out:
                continue
            t = test_side(group(r))
            n[t] += 1
            (te.write(r["sha256"].lower() + "\n") if t else tr.write(line))
    print(f"{name}: {n[False]} training rows, {n[True]} held out (whole groups)")
PY
mkdir -p "$TMP/test"
while read -r h; do
    [ -f "$TMP/all/$h.bin" ] && mv "$TMP/all/$h.bin" "$TMP/test/"
done < "$SPLIT/test-malicious.txt"
echo "held-out malware binaries (<= 256 KB): $(ls "$TMP/test" | wc -l)"
# Benign donor bytes from the training side (a file the attacker could have).
DONOR=$(awk -F'\t' 'NR > 1 && $3 > 200000 && $3 < 2000000 { print $1; exit }' "$BENIGN/MANIFEST.tsv")

TRAIN_MAL=$SPLIT/train-malicious.jsonl.gz
TRAIN_BEN=$SPLIT/train-benign.jsonl.gz
if [ "$AUGMENT" -gt 0 ]; then
    # The defence of training on mutants: AUGMENT random mutants (4 random actions each,
    # other benign bytes than the attacker's) of every training-side malware binary, and one
    # of as many training-side benign files, so that the edits themselves mean nothing.
    FILL=$(awk -F'\t' 'NR > 1 && $3 > 300000 && $3 < 3000000 { n++; if (n == 7) { print $1; exit } }' "$BENIGN/MANIFEST.tsv")
    mkdir -p "$TMP/benign-train"
    python3 - "$SPLIT/test-benign.txt" "$BENIGN/MANIFEST.tsv" "$BENIGN/files" "$TMP/benign-train" "$(ls "$TMP/all" | wc -l)" <<'PY'
import csv, os, random, sys
held = {l.strip() for l in open(sys.argv[1]) if l.strip()}
rows = [r for r in csv.DictReader(open(sys.argv[2]), delimiter="\t")
        if r["sha256"].lower() not in held and int(r["size"]) <= 4 << 20]
random.Random(0).shuffle(rows)
for r in rows[: int(sys.argv[5])]:
    os.link(os.path.join(sys.argv[3], r["name"]), os.path.join(sys.argv[4], r["name"]))
PY
    "$BIN" mutate "$TMP/all" --out "$TMP/mut-mal" --per-file "$AUGMENT" --steps "$AUG_STEPS" \
        --actions "$AUG_ACTIONS" --benign "$BENIGN/files/$FILL" --seed 1 --quiet
    mkdir -p "$TMP/mut-ben" && touch "$TMP/mut-ben.jsonl"
    [ "$AUG_BENIGN" = 1 ] && "$BIN" mutate "$TMP/benign-train" --out "$TMP/mut-ben" --per-file 1 \
        --steps "$AUG_STEPS" --actions "$AUG_ACTIONS" --benign "$BENIGN/files/$FILL" --seed 2 --quiet
    "$BIN" features "$TMP/mut-mal" --set "$FEATURES" --raw --out "$TMP/mut-mal.jsonl" --quiet || true
    "$BIN" features "$TMP/mut-ben" --set "$FEATURES" --raw --out "$TMP/mut-ben.jsonl" --quiet || true
    rm -rf "$TMP/mut-mal" "$TMP/mut-ben" "$TMP/benign-train"
    python3 corpus/mutant-rows.py "$SPLIT/train-malicious.jsonl.gz" "$TMP/mut-mal.jsonl" \
        "$SHARED/data/pe-corpus/MANIFEST.tsv" "$SPLIT/train-malicious-aug.jsonl.gz"
    python3 corpus/mutant-rows.py "$SPLIT/train-benign.jsonl.gz" "$TMP/mut-ben.jsonl" \
        "$BENIGN/MANIFEST.tsv" "$SPLIT/train-benign-aug.jsonl.gz"
    TRAIN_MAL=$SPLIT/train-malicious-aug.jsonl.gz
    TRAIN_BEN=$SPLIT/train-benign-aug.jsonl.gz
fi
rm -rf "$TMP/all"
SUFFIX=""; [ "$AUGMENT" -gt 0 ] && SUFFIX="-aug$AUGMENT-${AUG_ACTIONS//,/+}-s$AUG_STEPS-b$AUG_BENIGN"
DEFENCE=()
[ -n "$MONOTONE" ] && DEFENCE+=(--monotone "$MONOTONE") && SUFFIX+="-mono$(printf %s "$MONOTONE" | sha256sum | cut -c1-8)"
[ -n "$MAX_DELTA" ] && DEFENCE+=(--max-delta-step "$MAX_DELTA") && SUFFIX+="-mds$MAX_DELTA"
MODEL=${MODEL_FILE:-$SPLIT/model$SUFFIX.mallard}
[ -n "${MODEL_FILE:-}" ] || "$BIN" train --dataset "ember:$TRAIN_MAL" --dataset "ember:$TRAIN_BEN" \
    --model gbdt $TREES "${DEFENCE[@]}" --calibrate-fpr 0.01 --out "$MODEL" --quiet
"$BIN" attack "$TMP/test" --model "$MODEL" --budget "$BUDGET" --strategy "$STRATEGY" \
    --benign "$BENIGN/files/$DONOR" --report "${MODEL%.mallard}-attack.json" --quiet 2>/dev/null | tail -1
# False positives of the same model on the held-out benign files.
mkdir -p "$TMP/benign"
python3 - "$SPLIT/test-benign.txt" "$BENIGN/MANIFEST.tsv" "$BENIGN/files" "$TMP/benign" <<'PY'
import csv, hashlib, os, sys
want = {l.strip() for l in open(sys.argv[1]) if l.strip()}
for r in csv.DictReader(open(sys.argv[2]), delimiter="\t"):
    if r.get("sha256", "").lower() in want:
        os.link(os.path.join(sys.argv[3], r["name"]), os.path.join(sys.argv[4], r["name"]))
PY
"$BIN" scan "$TMP/benign" --model "$MODEL" --no-builtin-rules --json --quiet 2>/dev/null |
    python3 -c '
import json, sys
v = [json.loads(l) for l in sys.stdin if l.strip()]
ok = [x for x in v if x.get("verdict") in ("malicious", "benign")]
fp = sum(x["verdict"] == "malicious" for x in ok)
print(f"held-out benign files: {len(ok)}, flagged {fp} ({100 * fp / max(len(ok), 1):.2f}%)")'
