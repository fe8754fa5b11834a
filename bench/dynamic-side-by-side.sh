#!/usr/bin/env bash
# Side-by-side training and inference speed on MalBehavD-V1 train (2,046 rows), one run:
# the published Keras/TensorFlow pipeline (shared/baselines/keras_lstm_malbehavd.py) and
# mallard's kernels (cargo bench -p mallard-rnn --bench epoch). TensorFlow is installed
# into a venv under ~/.cache/mallard only for this script.
#
#   bench/dynamic-side-by-side.sh            # LSTM and GRU, 4 epochs each
#   EPOCHS=6 bench/dynamic-side-by-side.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MALLARD_SHARED:-$(cd .. && pwd)/shared}"
EPOCHS="${EPOCHS:-4}"
VENV="${VENV:-$HOME/.cache/mallard/venv-tf}"
out="$(mktemp -d)"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q tensorflow-cpu scikit-learn
  "$VENV/bin/pip" install -q "tf-keras~=2.21.0"
fi

echo "== Keras/TensorFlow (published pipeline, $EPOCHS epochs)"
"$VENV/bin/python" "$SHARED/baselines/keras_lstm_malbehavd.py" \
  --data "$SHARED/data/api-sequences/malbehavd-v1" --out "$out/keras.json" \
  --runs "lstm:$EPOCHS,gru:$EPOCHS" >/dev/null

echo "== mallard ($EPOCHS epochs)"
EPOCHS="$EPOCHS" cargo bench -q -p mallard-rnn --bench epoch 2>/dev/null | tee "$out/mallard.txt"

python3 - "$out/keras.json" "$out/mallard.txt" <<'PY'
import json, re, sys
k = json.load(open(sys.argv[1]))
m = open(sys.argv[2]).read()
print("\n== side by side (seconds per training epoch, epochs after the first for Keras)")
for cell in ("lstm", "gru"):
    run = next(v for key, v in k.items() if key.startswith(cell + ":"))
    ks = run["mean_epoch_seconds_excl_first"]
    mm = re.search(rf"^{cell.upper()}\s+threads \d+: epoch median ([0-9.]+) s", m, re.M)
    ms = float(mm.group(1)) if mm else float("nan")
    print(f"{cell:5s} keras {ks:.3f} s  mallard {ms:.3f} s  speed-up {ks / ms:.1f}x"
          f"   keras predict {run['predict_seconds'] / 512 * 1e3:.3f} ms/row")
PY
