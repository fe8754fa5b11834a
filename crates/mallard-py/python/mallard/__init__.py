"""mallard: EMBER-compatible PE features and malware scans, computed in Rust.

* ``PEFeatureExtractor(feature_version=2)``: a drop-in for EMBER's extractor (2381
  float32 values); ``feature_version=3`` for EMBER2024's (2568 values).
* ``features(items, feature_set="ember-v2")``: a NumPy matrix of many files or byte
  strings, extracted on all cores without the GIL.
* ``Model.load(path)`` / ``Model.builtin("pe")``: model files and the built-in models,
  with ``predict_proba``, ``score``, ``predict``, ``score_files`` and ``explain``.
* ``scan(path)``: the verdict dict that ``mallard scan --json PATH`` prints.
* ``mallard.arrow``: Arrow columns of file bytes or paths in, fixed-size-list float32
  columns out (a UDF for Ray Data, Spark ``mapInArrow``, Polars, Daft); needs pyarrow.
* ``mallard.pipeline.featurize_tree``: folder trees featurized with Ray Data into
  resumable Parquet; needs ``ray[data]``.
"""

from ._native import (
    Model,
    PEFeatureExtractor,
    __version__,
    features,
    names,
    pe_files,
    scan,
    scan_many,
)

__all__ = [
    "Model",
    "PEFeatureExtractor",
    "__version__",
    "features",
    "names",
    "pe_files",
    "scan",
    "scan_many",
]
