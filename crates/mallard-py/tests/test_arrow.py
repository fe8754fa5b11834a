"""mallard.arrow: Arrow columns in, fixed-size-list float32 columns out, equal to the
extractor's vectors; the CLI's Parquet output read back by pyarrow and Polars."""

import subprocess

import numpy as np
import pytest

import mallard

pa = pytest.importorskip("pyarrow", reason="mallard.arrow needs pyarrow (ci.sh installs it)")
import mallard.arrow as ma  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from conftest import PE_BENIGN, need, same_bits  # noqa: E402


@pytest.fixture(scope="module")
def files(benign_files):
    return [str(p) for p in benign_files[:40]]


@pytest.fixture(scope="module")
def ref(files):
    return mallard.features(files)


def matrix(col) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col.values.to_numpy(zero_copy_only=True).reshape(len(col), -1)


@pytest.mark.parametrize("typ", ["binary", "large_binary"])
def test_bytes_columns_equal_the_extractor(files, ref, typ):
    col = pa.array([open(f, "rb").read() for f in files], getattr(pa, typ)())
    out = ma.features(col)
    assert out.type == pa.list_(pa.field("item", pa.float32(), nullable=False), 2381)
    assert same_bits(matrix(out), ref)
    # A slice reads from its offset; the values are the same rows.
    assert same_bits(matrix(ma.features(col.slice(7, 11))), ref[7:18])


def test_output_wraps_the_extractors_array_without_a_copy(files, monkeypatch):
    from mallard import _native

    made = []
    real = _native._features_arrow

    def spy(*args):
        r = real(*args)
        made.append(r[0])
        return r

    monkeypatch.setattr(_native, "_features_arrow", spy)
    col = pa.array([open(f, "rb").read() for f in files[:3]])
    out = ma.features(col)
    # The column's value buffer is the very array the extractor filled.
    assert out.values.buffers()[1].address == made[0].ctypes.data
    assert out.values.buffers()[1].size == made[0].nbytes


def test_path_columns_chunked_with_nulls_and_missing_files(files, ref):
    col = pa.chunked_array(
        [pa.array(files[:3] + ["/nonexistent/x.exe"], pa.large_string()),
         pa.array([None, files[4]], pa.large_string())]
    )
    with pytest.raises(FileNotFoundError, match="/nonexistent/x.exe"):
        ma.features(col)
    out = ma.features(col, errors="null")
    assert isinstance(out, pa.ChunkedArray) and out.null_count == 2
    m = matrix(out)
    assert same_bits(m[:3], ref[:3]) and same_bits(m[5], ref[4])


def test_featurize_keeps_errors_as_rows(files, ref):
    paths = files[:2] + ["/nonexistent/y.exe"] + files[2:3]
    t = ma.featurize(pa.record_batch({"path": pa.array(paths)}))
    assert t.column_names == ["path", "sha256", "features", "error"]
    assert t.column("path").to_pylist() == paths
    err = t.column("error").to_pylist()
    assert err[2].startswith("/nonexistent/y.exe") and err[:2] == [None, None]
    assert t.column("sha256")[2].as_py() is None and len(t.column("sha256")[0].as_py()) == 64
    m = matrix(t.column("features"))
    assert same_bits(m[[0, 1, 3]], ref[:3])
    assert t.schema.metadata[b"mallard.feature_set"] == b"ember-v2"
    # Bytes columns (as Ray's read_binary_files gives them): path kept, bytes dropped.
    b = pa.table({"bytes": [open(f, "rb").read() for f in files[:2]], "path": files[:2]})
    t2 = ma.featurize(b, feature_set="ember-v3")
    assert t2.column_names == ["path", "sha256", "features", "error"]
    v3 = mallard.PEFeatureExtractor(3)
    assert same_bits(matrix(t2.column("features"))[1], v3.feature_vector(open(files[1], "rb").read()))


def test_wrong_inputs_are_refused_with_one_line():
    with pytest.raises(TypeError, match="file bytes .* or paths"):
        ma.features(pa.array([1, 2, 3]))
    with pytest.raises(TypeError, match="Arrow"):
        ma.features([b"MZ"])
    with pytest.raises(ValueError, match="errors="):
        ma.features(pa.array([b"MZ"]), errors="ignore")
    with pytest.raises(ValueError, match="no 'path' or 'bytes' column"):
        ma.featurize(pa.table({"x": [1]}))
    # Hostile layouts: offsets backwards or past the data are refused before any read.
    from mallard import _native

    bad = pa.py_buffer(np.array([0, 5, 3], dtype=np.int32))
    with pytest.raises(ValueError, match="not a valid Arrow array"):
        _native._features_arrow(2, 0, 4, bad, pa.py_buffer(b"MZabcdef"), None, False, "ember-v2")
    past = pa.py_buffer(np.array([0, 99], dtype=np.int64))
    with pytest.raises(ValueError, match="not a valid Arrow array"):
        _native._features_arrow(1, 0, 8, past, pa.py_buffer(b"MZ"), None, False, "ember-v2")
    with pytest.raises(ValueError, match="offset bytes"):
        _native._features_arrow(5, 0, 4, bad, pa.py_buffer(b"MZ"), None, False, "ember-v2")


def test_empty_and_all_null_columns():
    out = ma.features(pa.array([], pa.binary()))
    assert len(out) == 0
    out = ma.features(pa.array([None, None], pa.binary()), errors="null")
    assert out.null_count == 2


def test_polars_series_in(files, ref):
    pl = pytest.importorskip("polars", reason="Polars is installed by ci.sh")
    s = pl.Series("b", [open(f, "rb").read() for f in files[:5]])
    assert same_bits(matrix(ma.features(s)), ref[:5])


def test_cli_parquet_equals_the_package(mallard_cli, files, ref, tmp_path):
    folder = need(PE_BENIGN)
    out = tmp_path / "f.parquet"
    subprocess.run([str(mallard_cli), "-q", "features", "--set", "ember-v2", str(folder),
                    "--out", str(out)], check=True)
    t = pq.read_table(out)
    assert t.schema.equals(ma.schema("ember-v2"), check_metadata=True)
    rows = dict(zip(t.column("path").to_pylist(), matrix(t.column("features"))))
    assert t.column("error").null_count == len(t)
    for i, f in enumerate(files):
        assert same_bits(rows[f], ref[i]), f
    pl = pytest.importorskip("polars", reason="Polars is installed by ci.sh")
    df = pl.read_parquet(out)
    assert df.height == len(t) and str(df.schema["features"]).startswith("Array(Float32")
