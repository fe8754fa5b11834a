"""The Ray Data pipeline (mallard.pipeline) on a local cluster: features equal the
extractor's, per-file errors are rows, a second run resumes, a cut file is redone."""

import os
import shutil

import numpy as np
import pytest

import mallard

ray = pytest.importorskip("ray", reason="the pipeline test needs ray[data] (ci.sh installs it)")
pq = pytest.importorskip("pyarrow.parquet")
import mallard.pipeline as mp  # noqa: E402

from conftest import same_bits  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def read(out):
    rows = {}
    for f in sorted(os.listdir(out)):
        if f.endswith(".parquet"):
            t = pq.read_table(os.path.join(out, f))
            feats = t.column("features").combine_chunks()
            for i, (p, e) in enumerate(zip(t.column("path").to_pylist(), t.column("error").to_pylist())):
                assert p not in rows, f"{p} twice"
                rows[p] = (e, None if e else feats[i].values.to_numpy())
    return rows


def test_featurize_tree_resumes_and_keeps_errors(cluster, benign_files, tmp_path):
    tree = tmp_path / "tree"
    (tree / "a").mkdir(parents=True)
    (tree / "b").mkdir()
    files = benign_files[:30]
    for i, f in enumerate(files):
        shutil.copy(f, tree / ("a" if i < 20 else "b") / f.name)
    (tree / "a" / "notes.txt").write_text("not a PE file: not walked")
    out = tmp_path / "out"

    s = mp.featurize_tree([tree / "a", tmp_path / "missing"], out, files_per_task=7)
    assert (s["files"], s["skipped"], s["done"], s["errors"]) == (20, 0, 21, 1)
    rows = read(out)
    assert len(rows) == 21
    assert rows[str(tmp_path / "missing")][0]  # the walk error is a row with its message

    # A file cut by a killed run is deleted and its files redone.
    cut = next(f for f in sorted(os.listdir(out)) if f.startswith("run-"))
    with open(out / cut, "r+b") as fh:
        fh.truncate(100)
    (tmp_path / "missing").mkdir()  # the error is retried and now succeeds (an empty folder)

    s = mp.featurize_tree([tree, tmp_path / "missing"], out, files_per_task=7)
    assert s["files"] == 30 and s["errors"] == 0
    assert any("cut" in n for n in s["notes"]) and any("error rows dropped" in n for n in s["notes"])
    rows = read(out)
    want = {str(tree / ("a" if i < 20 else "b") / f.name): f for i, f in enumerate(files)}
    assert set(rows) == set(want)
    ref = mallard.features(list(want))
    for (p, _), r in zip(want.items(), ref):
        err, v = rows[p]
        assert err is None and same_bits(v, r), p

    s = mp.featurize_tree([tree], out)
    assert (s["skipped"], s["done"]) == (30, 0)


def test_other_feature_sets_in_the_folder_are_refused(cluster, benign_files, tmp_path):
    out = tmp_path / "out"
    mp.featurize_tree([benign_files[0]], out)
    with pytest.raises(ValueError, match="not a features file of ember-v3"):
        mp.featurize_tree([benign_files[0]], out, feature_set="ember-v3")


def test_featurize_as_a_map_batches_udf_over_read_binary_files(cluster, benign_files, tmp_path):
    """README's example: Ray reads the bytes, mallard.arrow.featurize is the UDF."""
    import mallard.arrow

    tree = tmp_path / "t"
    tree.mkdir()
    files = benign_files[:6]
    for f in files:
        shutil.copy(f, tree / f.name)
    ds = ray.data.read_binary_files(str(tree), include_paths=True)
    t = ds.map_batches(mallard.arrow.featurize, batch_format="pyarrow").to_arrow_refs()
    rows = {}
    for ref in t:
        tab = ray.get(ref)
        feats = tab.column("features").combine_chunks()
        for i, p in enumerate(tab.column("path").to_pylist()):
            rows[os.path.basename(p)] = feats[i].values.to_numpy()
    ref = mallard.features([str(f) for f in files])
    for f, r in zip(files, ref):
        assert same_bits(rows[f.name], r), f.name


def test_default_task_size_is_two_tasks_per_cpu_within_bounds():
    # ceil(files / (2 cpus)), then clamped to [64, 4096]: hand-computed.
    assert mp._task_size(2170, 2) == 543
    assert mp._task_size(4340, 2.0) == 1085
    assert mp._task_size(10, 2) == 64
    assert mp._task_size(1_000_000, 100) == 4096
    assert mp._task_size(5000, 0) == 2500  # a cluster reporting no CPUs counts as one
