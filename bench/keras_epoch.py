#!/usr/bin/env python3
"""Keras epoch time for the published recurrent models on MalBehavD-V1 train, as
bench/dynamic-side-by-side.sh compares them with mallard's kernels.

Embedding(V, 32) -> LSTM(100) | GRU(100) | Bidirectional(LSTM(100)) -> Dense(1, sigmoid),
MSE, RMSprop, batch 64, sequences pre-padded to the longest (the published pipeline's
arithmetic). Prints one JSON object: per cell, the epoch seconds (the first epoch, which
traces the graph, left out) and predict seconds per row.

    python bench/keras_epoch.py --data ../shared/data/api-sequences/malbehavd-v1 \
        --cells lstm,gru,bilstm --epochs 3
"""
import argparse
import csv
import json
import os
import time
from collections import Counter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def read(path):
    """Rows of API names and 0/1 labels from `sha256,labels,api...` (empty cells dropped)."""
    rows, labels = [], []
    with open(path, newline="") as f:
        r = csv.reader(f)
        next(r)
        for rec in r:
            if len(rec) < 2:
                continue
            labels.append(int(rec[1]))
            rows.append([a.strip().lower() for a in rec[2:] if a.strip()])
    return rows, labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder holding train.csv")
    ap.add_argument("--cells", default="lstm,gru,bilstm")
    ap.add_argument("--epochs", type=int, default=3, help="at least 2 (the first is left out)")
    ap.add_argument("--intra-op", type=int, default=0,
                    help="TensorFlow's threads within an op (0: TensorFlow's default, every core)")
    ap.add_argument("--inter-op", type=int, default=0,
                    help="TensorFlow's threads across ops (0: TensorFlow's default)")
    a = ap.parse_args()
    import numpy as np
    import tensorflow as tf
    from tensorflow import keras

    # Set before any op runs; 0 leaves TensorFlow's choice.
    tf.config.threading.set_intra_op_parallelism_threads(a.intra_op)
    tf.config.threading.set_inter_op_parallelism_threads(a.inter_op)

    rows, labels = read(os.path.join(a.data, "train.csv"))
    # Indices by falling frequency from 1, as Keras' Tokenizer gives them; 0 pads.
    freq = Counter(t for r in rows for t in r)
    index = {t: i + 1 for i, (t, _) in enumerate(freq.most_common())}
    maxlen = max(len(r) for r in rows)
    x = np.zeros((len(rows), maxlen), dtype="int32")
    for i, r in enumerate(rows):
        if r:
            x[i, maxlen - len(r):] = [index[t] for t in r]
    y = np.asarray(labels, dtype="float32")
    out = {"tensorflow": tf.__version__, "rows": len(rows), "maxlen": maxlen,
           "threads": os.cpu_count(), "intra_op": a.intra_op, "inter_op": a.inter_op}
    for cell in a.cells.split(","):
        keras.utils.set_random_seed(42)
        rnn = {"lstm": lambda: keras.layers.LSTM(100), "gru": lambda: keras.layers.GRU(100),
               "bilstm": lambda: keras.layers.Bidirectional(keras.layers.LSTM(100))}[cell]()
        model = keras.Sequential([
            keras.Input(shape=(maxlen,)),
            keras.layers.Embedding(len(index) + 1, 32),
            rnn,
            keras.layers.Dense(1, activation="sigmoid"),
        ])
        model.compile(loss="mse", optimizer=keras.optimizers.RMSprop(), metrics=["accuracy"])
        times = []

        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.t)

        model.fit(x, y, batch_size=64, epochs=max(2, a.epochs), verbose=0, callbacks=[Clock()])
        t = time.perf_counter()
        model.predict(x, batch_size=256, verbose=0)
        pred = (time.perf_counter() - t) / len(rows)
        rest = sorted(times[1:])
        out[cell] = {"epoch_seconds": times, "median_epoch_excl_first": rest[len(rest) // 2],
                     "predict_seconds_per_row": pred}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
