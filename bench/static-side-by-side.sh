#!/usr/bin/env bash
# Side-by-side feature-extraction throughput on shared/data/pe-benign, one run: EMBER's own
# extractor (elastic/ember features.py @ d97a0b5, lief 0.12.3, run by
# shared/baselines/ember_reference/run_ember.py) and mallard (cargo bench -p mallard-pefeatures).
# Both are per-core figures from process CPU time.
#
#   EMBER_FEATURES=/path/to/ember/features.py bench/static-side-by-side.sh
#
# features.py is not part of mallard: take it from elastic/ember at commit
# d97a0b523de02f3fe5ea6089d080abacab6ee931 (sha256 db0d93bb...f3ffd). The venv with
# lief 0.12.3, numpy<1.24 and scikit-learn 1.1.3 is made under ~/.cache/mallard.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MALLARD_SHARED:-$(cd .. && pwd)/shared}"
: "${EMBER_FEATURES:?set EMBER_FEATURES to the path of features.py from elastic/ember (see the comment at the top)}"
VENV="${VENV:-$HOME/.cache/mallard/venv-ember}"
out="$(mktemp -d)"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q lief==0.12.3 'numpy<1.24' scikit-learn==1.1.3
fi

echo "== EMBER (Python, one process)"
"$VENV/bin/python" "$SHARED/baselines/ember_reference/run_ember.py" \
  --ember-features "$EMBER_FEATURES" --ember-commit d97a0b523de02f3fe5ea6089d080abacab6ee931 \
  --out-dir "$out" --name pe-benign "$SHARED/data/pe-benign" >/dev/null 2>&1

echo "== mallard"
cargo bench -q -p mallard-pefeatures --bench throughput -- 3 ember-v2 2>/dev/null | tee "$out/mallard.txt"

python3 - "$out/pe-benign.summary.json" "$out/mallard.txt" <<'PY'
import json, re, sys
s = json.load(open(sys.argv[1]))
def find(d, keys):
    if isinstance(d, dict):
        for k, v in d.items():
            if k in keys and isinstance(v, (int, float)):
                return v
            r = find(v, keys)
            if r is not None:
                return r
    return None
e = find(s, {"MB_per_s_cpu"})
m = re.search(r"^\| ember-v2 \(vector\) \| ([0-9.]+) \|", open(sys.argv[2]).read(), re.M)
mm = float(m.group(1)) if m else float("nan")
print("\n== side by side (ember-v2, MB/s per core)")
if e is None:
    print("EMBER summary keys:", json.dumps(s)[:600])
else:
    print(f"EMBER {e:.2f} MB/s   mallard {mm:.0f} MB/s   speed-up {mm / e:.0f}x")
PY
