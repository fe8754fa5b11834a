#!/usr/bin/env bash
# End-to-end latency of `mallard scan` on one file, process start and model load included:
# median of 100 runs (hyperfine) for a PE file with and without the built-in YARA-X rules, and
# for a Cuckoo and a CAPE report.
#
#   bash bench/scan-latency.sh [MALLARD_BINARY]
#
# The binary is copied first, as `cargo install` would: a file fresh from the linker sits in
# small page-cache pages, and mapping those costs about 0.5 ms more per process start.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/mallard/target}/release/mallard}
SHARED=${SHARED:-../shared}
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp "$BIN" "$tmp/mallard"
M="$tmp/mallard"
PE="$SHARED/data/pe-benign/distlib__t32.exe"
CUCKOO="$SHARED/data/sandbox-reports/cuckoo/TFE-Cuckoo_analysis1_pafish_v2.0.7.json"
CAPE="$SHARED/data/sandbox-reports/cape/capa-testfiles_v2.4_41ce492f04accef7.json.gz"
"$M" scan -q "$PE" >/dev/null || true # builds the rules cache once, as any first run does
hyperfine -N -i -w 10 -r 100 --export-json "$tmp/hf.json" \
    "$M scan -q $PE" "$M scan -q --no-builtin-rules $PE" "$M scan -q $CUCKOO" "$M scan -q $CAPE" >/dev/null
python3 - "$tmp/hf.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    cmd = r["command"].split(" scan -q ", 1)[1]
    print(f"median {1000 * r['median']:.2f} ms  (min {1000 * r['min']:.2f})  scan {cmd}")
PY
