"""mallard.Model: model files and built-in models from Python, equal to the CLI's
predictions (`mallard eval --predictions`) and scans (`mallard scan --json`)."""

import csv
import json
import subprocess

import numpy as np
import pytest

import mallard
from conftest import SHARED, need


def malbehavd_test():
    path = need(SHARED / "data" / "api-sequences" / "malbehavd-v1" / "test.csv")
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        next(r)
        for row in r:
            rows.append((row[0], [c for c in row[2:] if c]))
    return path, rows


def test_builtin_api_model_equals_cli_predictions(mallard_cli, tmp_path):
    path, rows = malbehavd_test()
    pred = tmp_path / "p.jsonl"
    subprocess.run([str(mallard_cli), "-q", "eval", "--dataset", f"malbehavd:{path}",
                    "--predictions", str(pred)], check=True, capture_output=True)
    cli = [json.loads(line) for line in pred.read_text().splitlines()]
    m = mallard.Model.builtin("api")
    assert m.input == "api_sequence" and m.labels == ["benign", "malicious"]
    probs = m.predict_proba([calls for _, calls in rows])
    assert probs.shape == (len(rows), 2) and probs.dtype == np.float32
    assert [c["id"] for c in cli] == [sha for sha, _ in rows]
    want = np.array([c["probs"] for c in cli], dtype=np.float64).astype(np.float32)
    assert probs.tobytes() == want.tobytes()
    labels = m.predict([calls for _, calls in rows])
    # The CLI's "predicted" is the most probable class; the threshold may differ from 0.5.
    s = m.score([calls for _, calls in rows])
    assert labels == ["malicious" if x >= m.threshold else "benign" for x in s]
    reasons = m.explain(rows[0][1], top=3)
    assert 0 < len(reasons) <= 3 and {"kind", "name", "weight"} <= set(reasons[0])


def test_builtin_pe_model_scores_files_as_scan_does(mallard_cli, benign_files):
    files = [str(p) for p in benign_files[:12]]
    m = mallard.Model.builtin("pe")
    assert m.input == "features" and m.feature_set == "ember-v2-hardened"
    scores = m.score_files(files)
    out = subprocess.run([str(mallard_cli), "scan", "--json", "--sort", "--no-builtin-rules", *files],
                         capture_output=True, text=True)
    by_path = {r["path"]: r for r in map(json.loads, out.stdout.splitlines())}
    for f, s in zip(files, scores):
        assert by_path[f]["score"] == pytest.approx(float(s), abs=1e-6), f
    # Features given directly, in the model's column order, give the same scores.
    names = mallard.names("ember-v2-hardened")
    X = mallard.features(files, "ember-v2-hardened")
    idx = [names.index(c) for c in m.feature_names]
    assert np.array_equal(m.score(X[:, idx]), scores)
    with pytest.raises(ValueError, match="this model reads"):
        m.predict_proba(X[:, :10])


def test_model_files_round_trip_and_bad_files_raise(tmp_path):
    with pytest.raises(ValueError, match="no built-in model"):
        mallard.Model.builtin("nope")
    bad = tmp_path / "bad.mallard"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(ValueError, match="bad.mallard"):
        mallard.Model.load(bad)
    with pytest.raises((ValueError, OSError)):
        mallard.Model.load(tmp_path / "missing.mallard")
    m = mallard.Model.builtin("clamp")
    meta = m.meta()
    assert meta["kind"] == m.kind and meta["labels"] == m.labels
    assert "builtin:clamp" in repr(m)
    with pytest.raises(TypeError):
        mallard.Model.builtin("api").predict_proba("NtOpenFile")
