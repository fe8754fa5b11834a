#!/usr/bin/env bash
# Static detectors side by side (issue 14): grouped 5-fold cross-validation of boosted trees on
# each feature set, on files of at most 256 KB on both sides, so that size says nothing:
# the 1,368 malware binaries of shared/data/pe-corpus/malware-small.zip and the benign
# corpus's files of that size (corpus/benign/build.sh). Folds never split a malware family
# hint or a benign project (the groups of the default PE model).
#
#   bash bench/static-detectors.sh [SET...]        (default: ember-v2 opcodes; also image, malconv, dotnet)
#
# A set with a domain (dotnet: .NET assemblies) writes `"domain": false` on the rows outside it,
# which makes it a specialist in `mallard stack` and in bench/stack.py.
#
# Malware is unzipped into a temporary folder (password `infected`, never executed) and
# deleted at the end; features, labels and out-of-fold predictions go to $WORK.
#
# Every detector tests each file in the same fold: the first set run makes the folds and
# writes them ($WORK/folds.tsv, by sha256); the others read them (`cv --fold-file`), and so
# can `mallard stack --fold-file`. FOLDS=new makes them afresh.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/mallard/target}/release/mallard}
SHARED=${SHARED:-../shared}
BENIGN=${BENIGN:-$HOME/.cache/mallard/benign-corpus}
WORK=${WORK:-$HOME/.cache/mallard/static-detectors}
MAX=${MAX:-262144}
SETS=${*:-ember-v2 opcodes}
# The default PE model's settings (models/README.md), chosen on its own training data, but
# without --balance-kinds, which reads the kind of file from EMBER columns that other sets
# lack: every set is trained the same way.
TREES=${TREES:---n-estimators 600 --lr 0.05 --num-leaves 63 --feature-fraction 0.5 --min-data-in-leaf 40}
[ -x "$BIN" ] || { echo "no mallard binary at $BIN: run cargo build --release first" >&2; exit 2; }
[ -f "$BENIGN/MANIFEST.tsv" ] || { echo "no benign corpus in $BENIGN: bash corpus/benign/build.sh" >&2; exit 2; }
mkdir -p "$WORK"
[ "${FOLDS:-}" = new ] && rm -f "$WORK/folds.tsv"
# The shared folds: read them when they exist, else write the ones this run makes.
folds() { if [ -s "$WORK/folds.tsv" ]; then echo --fold-file "$WORK/folds.tsv"; else echo --write-folds "$WORK/folds.tsv"; fi; }
TMP=$(mktemp -d /tmp/mallard-malware-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

unzip -q -P infected "$SHARED/data/pe-corpus/malware-small.zip" -d "$TMP/malware"
# Nothing held out may be used (the zip should hold none; checked, not assumed).
python3 - "$SHARED/data/pe-corpus/EXCLUDE-sha256.txt" "$TMP/malware" <<'PY'
import os, sys
held = {l.split()[0].lower() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")}
bad = [f for f in os.listdir(sys.argv[2]) if f.split(".")[0].lower() in held]
if bad:
    sys.exit(f"{len(bad)} held-out files in the malware zip, e.g. {bad[0]}")
PY
# Benign files of at most MAX bytes, as hard links (same file system as the corpus).
rm -rf "$WORK/benign-small"
mkdir -p "$WORK/benign-small"
awk -F'\t' -v max="$MAX" 'NR > 1 && $3 <= max { print $1 }' "$BENIGN/MANIFEST.tsv" |
    while read -r name; do ln "$BENIGN/files/$name" "$WORK/benign-small/$name"; done
echo "malware: $(ls "$TMP/malware" | wc -l) files; benign: $(ls "$WORK/benign-small" | wc -l) files (at most $MAX bytes)"

for set in $SETS; do
    if [ "$set" = malconv ]; then
        # MalConv reads the files themselves: a labelled folder of links and the same groups
        # (family hint, benign project) as the feature sets' rows, by file name.
        rm -rf "$WORK/malconv-files" && mkdir -p "$WORK/malconv-files/malicious" "$WORK/malconv-files/benign"
        for f in "$TMP"/malware/*; do ln -s "$f" "$WORK/malconv-files/malicious/"; done
        for f in "$WORK"/benign-small/*; do ln -s "$f" "$WORK/malconv-files/benign/"; done
        python3 - "$SHARED/data/pe-corpus/MANIFEST.tsv" "$BENIGN/MANIFEST.tsv" > "$WORK/malconv-groups.tsv" <<'PY'
import csv, importlib.util, sys
spec = importlib.util.spec_from_file_location("label", "corpus/label-ember.py")
label = importlib.util.module_from_spec(spec); spec.loader.exec_module(label)
print("name\tgroup")
for r in csv.DictReader(open(sys.argv[1]), delimiter="\t"):
    if r.get("family"):
        print(f'{r["sha256"].lower()}\tfamily:{r["family"]}')
for r in csv.DictReader(open(sys.argv[2]), delimiter="\t"):
    print(f'{r["name"]}\tproject:{label.project(r["package"])}')
PY
        echo "== malconv"
        # shellcheck disable=SC2046
        "$BIN" cv --model malconv --dataset "pe:$WORK/malconv-files" --groups "$WORK/malconv-groups.tsv" \
            ${MALCONV:-} $(folds) --predictions "$WORK/cv-malconv.jsonl"
        continue
    fi
    for side in malicious benign; do
        if [ $side = malicious ]; then dir=$TMP/malware; man=$SHARED/data/pe-corpus/MANIFEST.tsv
        else dir=$WORK/benign-small; man=$BENIGN/MANIFEST.tsv; fi
        rm -f "$WORK/$side-$set.jsonl"
        "$BIN" features "$dir" --set "$set" --out "$WORK/$side-$set.jsonl" 2>&1 | tail -1
        python3 corpus/label-ember.py "$WORK/$side-$set.jsonl" "$man" $side "$WORK/$side-$set.jsonl.gz"
        rm -f "$WORK/$side-$set.jsonl"
    done
    echo "== $set"
    # shellcheck disable=SC2086,SC2046
    "$BIN" cv --dataset "ember:$WORK/malicious-$set.jsonl.gz" --dataset "ember:$WORK/benign-$set.jsonl.gz" \
        $TREES $(folds) --predictions "$WORK/cv-$set.jsonl"
done
