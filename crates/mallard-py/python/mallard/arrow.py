"""Features of Arrow columns, for dataframe and dataset engines (needs ``pyarrow``).

``features(column)`` takes a column of file bytes (``binary``, ``large_binary``) or of
paths (``string``, ``large_string``) and returns a ``fixed_size_list<float32>[dim]``
column, one entry per value. ``featurize(batch)`` takes a table or record batch and adds
the columns a features file has (``sha256``, ``features``, ``error``): it is the function
to hand to Ray Data's ``map_batches(..., batch_format="pyarrow")``, Spark's
``mapInArrow``, Daft's or Polars' batch UDFs.

No copies: the file bytes are read where the Arrow buffers hold them, and the output
column wraps the array the extractor wrote. Like NumPy's functions that release the GIL,
this assumes the input buffers are not written by another thread during the call (Arrow
arrays are immutable; pyarrow never writes them).

Accepted inputs: ``pyarrow.Array``, ``pyarrow.ChunkedArray``, and anything
``pyarrow.array``/``pyarrow.chunked_array`` take through the Arrow PyCapsule interface
(Polars ``Series``, arro3, nanoarrow, ...). ``binary_view``/``string_view`` columns are
cast to ``large_binary``/``large_string`` first (a copy).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Optional

from . import _native

__all__ = ["features", "featurize", "schema"]

_ERRORS = ("raise", "null")


def _pa():
    try:
        import pyarrow
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "mallard.arrow needs pyarrow: pip install pyarrow"
        ) from e
    return pyarrow


@lru_cache(maxsize=None)
def _dim(feature_set: str) -> int:
    return len(_native.names(feature_set))


def _as_arrow(column: Any):
    pa = _pa()
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        return column
    if hasattr(column, "__arrow_c_stream__"):
        return pa.chunked_array(column)
    if hasattr(column, "__arrow_c_array__"):
        return pa.array(column)
    if hasattr(column, "to_arrow"):  # older Polars, Daft
        return _as_arrow(column.to_arrow())
    raise TypeError(
        f"expected an Arrow array or column, got {type(column).__name__}"
    )


def _kind(t) -> tuple[int, bool]:
    """(offset width, values are paths) of a supported type."""
    pa = _pa()
    if pa.types.is_binary(t):
        return 4, False
    if pa.types.is_large_binary(t):
        return 8, False
    if pa.types.is_string(t):
        return 4, True
    if pa.types.is_large_string(t):
        return 8, True
    raise TypeError(
        f"expected a column of file bytes (binary, large_binary) or paths (string, "
        f"large_string), got {t}"
    )


def _is_text(t) -> bool:
    pa = _pa()
    views = getattr(pa.types, "is_string_view", lambda _: False)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or views(t)


def _cast_views(arr):
    pa = _pa()
    t = arr.type
    if hasattr(pa.types, "is_binary_view") and pa.types.is_binary_view(t):
        return arr.cast(pa.large_binary())
    if hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t):
        return arr.cast(pa.large_string())
    return arr


def _one(arr, feature_set: str, threads: Optional[int]):
    """(fixed-size-list array, sha256 list, failures) of one pyarrow Array."""
    pa = _pa()
    arr = _cast_views(arr)
    width, paths = _kind(arr.type)
    validity, offsets, data = arr.buffers()
    if data is None:  # an array of only nulls or empty values may have no data buffer
        data = pa.py_buffer(b"")
    values, shas, failures = _native._features_arrow(
        len(arr), arr.offset, width, offsets, data, validity, paths, feature_set, threads
    )
    dim = _dim(feature_set)
    n = len(arr)
    child = pa.Array.from_buffers(pa.float32(), n * dim, [None, pa.py_buffer(values)])
    mask = None
    if failures:
        import numpy as np

        ok = np.ones(n, dtype=bool)
        ok[[i for i, _, _ in failures]] = False
        mask = pa.py_buffer(np.packbits(ok, bitorder="little"))
    out = pa.Array.from_buffers(
        pa.list_(pa.field("item", pa.float32(), nullable=False), dim),
        n,
        [mask],
        children=[child],
        null_count=len(failures),
    )
    return out, shas, failures


def _raise(failures) -> None:
    i, cls, msg = failures[0]
    import builtins

    raise getattr(builtins, cls, ValueError)(msg)


def _chunks(arr):
    pa = _pa()
    return arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]


def features(
    column: Any,
    feature_set: str = "ember-v2",
    *,
    threads: Optional[int] = None,
    errors: str = "raise",
):
    """Feature vectors of a column of file bytes or paths, as an Arrow column.

    Returns a ``pyarrow.FixedSizeListArray`` of ``float32`` (``dim`` values per entry),
    or a ``ChunkedArray`` of them for chunked input; each entry equals
    ``PEFeatureExtractor(...).feature_vector`` of that file. ``errors="raise"`` raises
    for the first failing value (``ValueError``; ``OSError`` for paths that cannot be
    read); ``errors="null"`` makes that entry null (``featurize`` keeps the message).
    """
    if errors not in _ERRORS:
        raise ValueError(f"errors={errors!r}: expected 'raise' or 'null'")
    pa = _pa()
    arr = _as_arrow(column)
    outs = []
    for chunk in _chunks(arr):
        out, _, failures = _one(chunk, feature_set, threads)
        if failures and errors == "raise":
            _raise(failures)
        outs.append(out)
    if isinstance(arr, pa.ChunkedArray):
        return pa.chunked_array(outs, type=_list_type(feature_set))
    return outs[0]


def _list_type(feature_set: str):
    pa = _pa()
    return pa.list_(pa.field("item", pa.float32(), nullable=False), _dim(feature_set))


@lru_cache(maxsize=None)
def schema(feature_set: str = "ember-v2", *, path_type=None):
    """The schema of a features file (``mallard features --out FILE.parquet``): ``path``,
    ``sha256``, ``features``, ``error``, with the set's name and column names as metadata."""
    import json

    pa = _pa()
    return pa.schema(
        [
            pa.field("path", path_type or pa.string(), nullable=False),
            pa.field("sha256", pa.string()),
            pa.field("features", _list_type(feature_set)),
            pa.field("error", pa.string()),
        ],
        metadata={
            "mallard.feature_set": feature_set,
            "mallard.feature_names": json.dumps(_native.names(feature_set), separators=(",", ":")),
        },
    )


def featurize(
    batch: Any,
    *,
    column: Optional[str] = None,
    feature_set: str = "ember-v2",
    threads: Optional[int] = None,
    keep: Optional[list] = None,
):
    """A features table of one batch: the UDF for Ray Data, Spark, Daft and Polars.

    ``batch``: a ``pyarrow.Table`` or ``RecordBatch`` (or anything with
    ``__arrow_c_stream__``) holding a column of paths (``path``) or file bytes
    (``bytes``, as Ray's ``read_binary_files`` names it); ``column`` names another.
    Returns a ``pyarrow.Table`` with ``path`` (when the batch has one), ``sha256``,
    ``features`` (null where a file failed) and ``error`` (the one-line message, null on
    success), plus the columns named in ``keep``. A file that fails is a row with its
    error, never an exception: a batch of a million files is not lost to one bad file.
    """
    pa = _pa()
    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    elif not isinstance(batch, pa.Table):
        batch = pa.table(batch)
    names = batch.column_names
    if column is None:
        column = next((c for c in ("path", "bytes") if c in names), None)
        if column is None:
            raise ValueError(
                f"no 'path' or 'bytes' column in the batch (columns: {names}); name one with column="
            )
    if column not in names:
        raise ValueError(f"no column {column!r} in the batch (columns: {names})")
    shas, errors, outs = [], [], []
    for chunk in batch.column(column).chunks:
        out, sha, failures = _one(chunk, feature_set, threads)
        outs.append(out)
        shas.extend(sha)
        msg = [None] * len(chunk)
        for i, _, m in failures:
            msg[i] = m
        errors.extend(msg)
    cols = {}
    if "path" in names:
        cols["path"] = batch.column("path")
    elif _is_text(batch.schema.field(column).type):
        cols["path"] = batch.column(column)
    cols["sha256"] = pa.array(shas, pa.string())
    cols["features"] = pa.chunked_array(outs, type=_list_type(feature_set))
    cols["error"] = pa.array(errors, pa.string())
    for k in keep or []:
        cols[k] = batch.column(k)
    t = pa.table(cols)
    meta = schema(feature_set).metadata
    return t.replace_schema_metadata(meta)
