"""Hostile, empty and wrong inputs: the documented behaviour, never a crash."""

import math
import random

import numpy as np
import pytest

import mallard
from conftest import PE_BENIGN


@pytest.fixture(params=[2, 3], ids=["ember-v2", "ember-v3"])
def ex(request):
    return mallard.PEFeatureExtractor(request.param)


def test_version():
    assert isinstance(mallard.__version__, str) and mallard.__version__.count(".") == 2


def test_unsupported_versions_and_options():
    for v in (1, 4):
        with pytest.raises(ValueError, match="feature_version"):
            mallard.PEFeatureExtractor(v)
    with pytest.raises(ValueError, match="features_file"):
        mallard.PEFeatureExtractor(2, features_file="groups.json")
    assert repr(mallard.PEFeatureExtractor(3)) == "mallard.PEFeatureExtractor(feature_version=3)"


def test_non_pe_bytes_are_scored_from_their_bytes(ex):
    """As EMBER does: byte and string groups computed, PE groups at their defaults."""
    data = b"just some text, not a PE file at all\n" * 100
    v = ex.feature_vector(data)
    assert v.shape == (ex.dim,) and np.isfinite(v).all()
    raw = ex.raw_features(data)
    assert sum(raw["histogram"]) == len(data)
    assert raw["general"]["size"] == len(data)
    assert np.array_equal(ex.process_raw_features(raw), v)


def test_empty_input():
    # EMBER v2 takes an empty file, and its histograms come out 0/0 = NaN as EMBER's do;
    # thrember raises IndexError on one (its B5), so version 3 refuses it with a ValueError.
    v = mallard.PEFeatureExtractor(2).feature_vector(b"")
    assert v.shape == (2381,) and np.isnan(v[:512]).all() and np.isfinite(v[512:]).all()
    with pytest.raises(ValueError, match="empty"):
        mallard.PEFeatureExtractor(3).feature_vector(b"")
    with pytest.raises(ValueError, match="empty"):
        mallard.PEFeatureExtractor(3).raw_features(b"")


def test_wrong_types_raise_type_error(ex):
    for bad in ("MZ", 42, None, [77, 90]):
        with pytest.raises(TypeError):
            ex.feature_vector(bad)
    with pytest.raises(TypeError):
        mallard.features(b"MZ")
    with pytest.raises(TypeError):
        mallard.features("file.exe")
    with pytest.raises(TypeError, match="item 1"):
        mallard.features([b"MZ", 3])


def test_bad_raw_objects_raise_value_error(ex):
    good = ex.raw_features(b"MZ" + bytes(300))
    for broken in ({}, {"histogram": "x"}, dict(good, histogram=[1, 2, 3])):
        with pytest.raises(ValueError):
            ex.process_raw_features(broken)
    with pytest.raises(ValueError, match="finite"):
        ex.process_raw_features(dict(good, general=dict(good["general"], size=math.nan)))
    deep = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(ValueError, match="nested"):
        ex.process_raw_features(dict(good, strings=deep))
    with pytest.raises(ValueError, match="not a JSON value"):
        ex.process_raw_features(dict(good, header=object()))


def test_numpy_values_in_raw_dicts(ex):
    """A dict built live by EMBER or thrember may hold NumPy scalars and arrays."""
    raw = ex.raw_features(b"MZ" + bytes(5000) + b"hello world, strings here")
    v = ex.process_raw_features(raw)
    raw["histogram"] = np.asarray(raw["histogram"], dtype=np.int64)
    raw["general"] = {k: (np.float64(x) if isinstance(x, float) else x)
                      for k, x in raw["general"].items()}
    assert np.array_equal(ex.process_raw_features(raw), v)


def test_mutated_and_truncated_pe_files_never_crash(ex):
    """Random cuts and byte flips of a real PE file: a vector or a ValueError, nothing else."""
    src = sorted(PE_BENIGN.glob("*.dll"))[:1] if PE_BENIGN.exists() else []
    base = src[0].read_bytes()[:200_000] if src else _tiny_pe()
    rng = random.Random(16)
    for i in range(150):
        data = bytearray(base[: rng.randrange(1, len(base) + 1)])
        for _ in range(rng.randrange(0, 40)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            v = ex.feature_vector(bytes(data))
        except ValueError as e:
            assert str(e) and "\n" not in str(e)
            continue
        assert v.shape == (ex.dim,), i


def _tiny_pe() -> bytes:
    """MZ header pointing at a PE header with no sections (used when ../shared is absent)."""
    b = bytearray(1024)
    b[0:2] = b"MZ"
    b[0x3C:0x40] = (0x80).to_bytes(4, "little")
    b[0x80:0x84] = b"PE\0\0"
    b[0x84:0x86] = (0x14C).to_bytes(2, "little")
    return bytes(b)


def test_batch_errors_raise_or_give_nan_rows(tmp_path):
    ok = tmp_path / "ok.bin"
    ok.write_bytes(b"MZ" + bytes(4000))
    missing = tmp_path / "missing.exe"
    items = [ok, missing, b""]
    with pytest.raises(FileNotFoundError, match="missing.exe"):
        mallard.features(items, "ember-v3")
    m = mallard.features(items, "ember-v3", errors="nan")
    assert m.shape == (3, 2568)
    assert np.isfinite(m[0]).all() and np.isnan(m[1]).all() and np.isnan(m[2]).all()
    # The first failure in input order is the one raised: item 2 (empty) after the path.
    with pytest.raises(ValueError, match="item 1: .*empty"):
        mallard.features([ok, b""], "ember-v3")
    with pytest.raises(ValueError, match="not a regular file"):
        mallard.features([tmp_path], "ember-v2")
    for bad in ({"errors": "ignore"}, {"threads": 0}, {"feature_set": "nope"}):
        with pytest.raises(ValueError):
            mallard.features([ok], **bad)
    assert mallard.features([], "ember-v2").shape == (0, 2381)


def test_other_feature_sets_and_threads():
    real = sorted(PE_BENIGN.glob("*.exe"))[:1] if PE_BENIGN.exists() else []
    data = real[0].read_bytes() if real else _tiny_pe()
    # The PE-header sets need a whole optional header; the tiny one has none.
    sets = ("pe-header", "saxe-1024", "image", "ember-v2-hardened") if real else ("image",)
    for fs in sets:
        m = mallard.features([data, data], fs, threads=2)
        assert m.shape == (2, len(mallard.names(fs))) and np.array_equal(m[0], m[1], equal_nan=True)
    # More threads than items, and than cores, is fine.
    assert mallard.features([data], "image", threads=64).shape[0] == 1
