"""The installed wheel as a user gets it: stubs, docstrings, and the GIL released."""

import threading
from pathlib import Path

import mallard


def test_imported_from_the_installed_wheel_with_stubs():
    pkg = Path(mallard.__file__).parent
    assert "site-packages" in pkg.parts or "dist-packages" in pkg.parts, pkg
    assert (pkg / "py.typed").is_file() and (pkg / "__init__.pyi").is_file()
    stub = (pkg / "__init__.pyi").read_text()
    for name in mallard.__all__:
        assert name in stub, name


def test_public_api_has_docstrings():
    for name in mallard.__all__:
        if name != "__version__":
            assert (getattr(mallard, name).__doc__ or "").strip(), name
    for m in ("raw_features", "process_raw_features", "feature_vector", "dim"):
        assert (getattr(mallard.PEFeatureExtractor, m).__doc__ or "").strip(), m
    assert "errors" in mallard.features.__doc__ and "raise" in mallard.features.__doc__


def test_batch_releases_the_gil():
    """Python code keeps running on another thread while a batch is being extracted."""
    items = [bytes(range(256)) * 8192] * 48  # 48 x 2 MiB, about 0.5 s of work
    done = threading.Event()
    t = threading.Thread(target=lambda: (mallard.features(items, "ember-v3", threads=1),
                                         done.set()))
    t.start()
    spins = 0
    while not done.is_set():
        spins += 1
    t.join()
    # Held, the GIL would stop this loop for the whole batch: it would spin a few 5 ms
    # switch intervals (about 30,000 turns each here); released, it spins ~3 million times.
    assert spins > 200_000, spins
