#!/usr/bin/env bash
# Recurrent training and inference speed on MalBehavD-V1 train (2,046 rows), side by side in
# one run: Keras/TensorFlow (bench/keras_epoch.py: the published layers, pre-padded to the
# longest sequence) and mallard's kernels (cargo bench -p mallard-rnn --bench epoch), each
# side ROUNDS times, interleaved, so that a change in the machine's load hits both. Prints
# the machine (CPU, mallard's SIMD level, threads, load average per round) and, per cell,
# every round's ratio and their median. TensorFlow is installed into a venv under
# ~/.cache/mallard only for this script.
#
#   bench/dynamic-side-by-side.sh                  # 3 rounds, 3 epochs per run
#   ROUNDS=5 EPOCHS=4 bench/dynamic-side-by-side.sh
#   MALLARD_SIMD=avx2 bench/dynamic-side-by-side.sh   # mallard's AVX2 kernels
#
# Cells: LSTM, GRU and BiLSTM with mallard's defaults (no padding work) against Keras, and
# LSTM-pad (mallard repeating Keras' arithmetic: pre-padded, no masking, `--preset
# published`) against Keras' LSTM.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${MALLARD_SHARED:-$(cd .. && pwd)/shared}"
EPOCHS="${EPOCHS:-3}"
ROUNDS="${ROUNDS:-3}"
VENV="${VENV:-$HOME/.cache/mallard/venv-tf}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import tensorflow' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q tensorflow-cpu
fi
data="$SHARED/data/api-sequences/malbehavd-v1"
cargo bench -q -p mallard-rnn --bench epoch --no-run 2>/dev/null

for r in $(seq "$ROUNDS"); do
  echo "== round $r/$ROUNDS: Keras, then mallard (load $(cut -d' ' -f1-3 /proc/loadavg))"
  "$VENV/bin/python" bench/keras_epoch.py --data "$data" --cells lstm,gru,bilstm \
    --epochs "$EPOCHS" > "$out/keras$r.json"
  MALLARD_SHARED="$SHARED" EPOCHS="$EPOCHS" ONLY=LSTM,GRU,BiLSTM,LSTM-pad \
    cargo bench -q -p mallard-rnn --bench epoch 2>/dev/null > "$out/mallard$r.txt"
  grep -E '^(machine|LSTM|GRU|BiLSTM)' "$out/mallard$r.txt" | cut -c1-110
done

python3 - "$out" "$ROUNDS" <<'PY'
import json, os, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
threads = os.cpu_count()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
cells = [("LSTM", "lstm"), ("GRU", "gru"), ("BiLSTM", "bilstm"), ("LSTM-pad", "lstm")]
rows = {c: [] for c, _ in cells}
pred = []
for r in range(1, rounds + 1):
    k = json.load(open(f"{out}/keras{r}.json"))
    m = open(f"{out}/mallard{r}.txt").read()
    for name, kc in cells:
        mm = re.search(rf"^{re.escape(name)}\s+threads {threads}: epoch median ([0-9.]+) s.*?predict ([0-9.]+) ms/seq", m, re.M)
        ks = k[kc]["median_epoch_excl_first"]
        if mm:
            rows[name].append((ks, float(mm.group(1)), float(mm.group(2))))
    simd = re.search(r"kernels (\w+)", m)
    tf = k["tensorflow"]
print(f"\n== side by side: {cpu}, {threads} threads each side, mallard kernels "
      f"{simd.group(1) if simd else '?'}, TensorFlow {tf}, {rounds} interleaved rounds")
print("cell      Keras s/epoch (median)  mallard s/epoch (median)  ratio per round           median ratio  (Keras s/epoch per round)")
for name, _ in cells:
    v = rows[name]
    if not v:
        print(f"{name:9s} (no figure)")
        continue
    ratios = [k / m for k, m, _ in v]
    print(f"{name:9s} {statistics.median(k for k, _, _ in v):10.3f}              "
          f"{statistics.median(m for _, m, _ in v):10.3f}               "
          f"{', '.join(f'{x:.1f}x' for x in ratios):24s} {statistics.median(ratios):.1f}x"
          f"         ({', '.join(f'{k:.2f}' for k, _, _ in v)})")
lstm = rows["LSTM"]
if lstm:
    print(f"LSTM inference, batches of 256: mallard {statistics.median(p for _, _, p in lstm):.4f} ms/seq")
PY
