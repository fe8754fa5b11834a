"""Featurize folder trees of PE files with Ray Data, into a folder of Parquet files.

``featurize_tree(["corpus/"], "features/")`` finds the PE files as ``mallard features``
does (folders searched recursively, files starting with "MZ", links not followed), hands
them to Ray Data in tasks of ``files_per_task`` paths (by default about two tasks per CPU
of the cluster, 64 to 4,096 files each), extracts features with
``mallard.arrow.featurize`` on the workers (each task reads its own files: only paths
travel through Ray's object store) and writes Parquet files with the columns of
``mallard features --out FILE.parquet`` (``path``, ``sha256``, ``features``, ``error``).

Resumable: a file already in the output folder with features is not done again; error
rows are dropped from the old files and those files are retried; a Parquet file cut by
a killed run (no footer) is deleted and its files redone. Per-file errors (unreadable,
not parseable, vanished between walk and read) are rows with an ``error`` message, never a
failed job. See docs/ray-pipeline.md for running it across machines.

Needs ``ray[data]`` and ``pyarrow`` (``pip install "ray[data]"``).
"""

from __future__ import annotations

import os
import time
from typing import Iterable, Optional, Union

from . import _native
from . import arrow as _arrow

__all__ = ["featurize_tree", "done_paths"]

_PathLike = Union[str, "os.PathLike[str]"]


def _featurize_block(batch, feature_set: str, threads: int):
    """The Ray task: one block of paths in, its features table out."""
    from mallard import arrow

    return arrow.featurize(batch, column="path", feature_set=feature_set, threads=threads)


def _parquet_files(out: str) -> list:
    return sorted(
        os.path.join(out, n)
        for n in os.listdir(out)
        if n.endswith(".parquet") and os.path.isfile(os.path.join(out, n))
    )


def done_paths(out: _PathLike, feature_set: str, notes: Optional[list] = None) -> set:
    """Paths the output folder holds features for, after readying it for a resumed run:
    cut files are deleted, error rows dropped (so those files are retried). A file of
    another feature set, or not a features file, raises ``ValueError``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    notes = notes if notes is not None else []
    out = os.fspath(out)
    done: set = set()
    if not os.path.isdir(out):
        return done
    for f in _parquet_files(out):
        try:
            meta = pq.read_schema(f).metadata or {}
            t = pq.read_table(f)
        except (pa.ArrowInvalid, OSError) as e:
            os.remove(f)
            notes.append(f"{f}: deleted a file cut by an interrupted run ({e})")
            continue
        got = meta.get(b"mallard.feature_set", b"").decode(errors="replace")
        if got != feature_set or not {"path", "error", "features"} <= set(t.column_names):
            raise ValueError(
                f"{f}: not a features file of {feature_set} (feature set {got or 'unknown'}); "
                "give another output folder"
            )
        ok = pc.is_null(t.column("error"))
        if not pc.all(ok).as_py():
            kept = t.filter(ok)
            notes.append(f"{f}: {len(t) - len(kept)} error rows dropped, to be retried")
            if len(kept) == 0:
                os.remove(f)
                continue
            tmp = f + ".tmp"
            pq.write_table(kept, tmp)
            os.replace(tmp, f)
            t = kept
        done.update(t.column("path").to_pylist())
    return done


def featurize_tree(
    inputs: Iterable[_PathLike],
    out: _PathLike,
    feature_set: str = "ember-v2",
    *,
    files_per_task: Optional[int] = None,
    threads_per_task: int = 1,
    max_depth: Optional[int] = None,
    num_cpus: Optional[int] = None,
    progress: bool = False,
) -> dict:
    """Features of every PE file under ``inputs`` written to the folder ``out`` as Parquet.

    Starts a local Ray cluster (``num_cpus`` cores, default all) unless Ray is already
    initialized (``ray.init(address=...)`` first to run on an existing cluster). Returns a
    summary: ``files`` found, ``skipped`` (already done), ``done`` (rows written by this
    run), ``errors`` (error rows among them), ``seconds`` and ``notes``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray

    if (files_per_task is not None and files_per_task < 1) or threads_per_task < 1:
        raise ValueError("files_per_task and threads_per_task must be at least 1")
    started = time.perf_counter()
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    files, walk_errors = _native.pe_files([os.fspath(p) for p in inputs], max_depth)
    notes: list = []
    done = done_paths(out, feature_set, notes)
    todo = [f for f in files if f not in done]
    stamp = f"{time.time_ns():x}"
    errors = 0
    if walk_errors:
        t = pa.table(
            {
                "path": [p for p, _ in walk_errors],
                "sha256": pa.nulls(len(walk_errors), pa.string()),
                "features": pa.nulls(len(walk_errors), _arrow._list_type(feature_set)),
                "error": [e for _, e in walk_errors],
            },
            schema=_arrow.schema(feature_set),
        )
        pq.write_table(t, os.path.join(out, f"walk-errors-{stamp}.parquet"))
        errors += len(walk_errors)
    if todo:
        if not ray.is_initialized():
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR")
        per_task = files_per_task or _task_size(len(todo), ray.cluster_resources().get("CPU", 1))
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        blocks = [
            pa.table({"path": pa.array(todo[i : i + per_task], pa.string())})
            for i in range(0, len(todo), per_task)
        ]
        ds = ray.data.from_arrow(blocks).map_batches(
            _featurize_block,
            fn_kwargs={"feature_set": feature_set, "threads": threads_per_task},
            batch_format="pyarrow",
            batch_size=None,
            num_cpus=threads_per_task,
        )
        # Parquet files named by this run (run-STAMP_WRITE-UUID_TASK.parquet), written in
        # parallel by the tasks.
        names = ray.data.datasource.FilenameProvider(
            dataset_uuid=f"run-{stamp}", file_format="parquet"
        )
        ds.write_parquet(out, filename_provider=names)
        errors += _count_errors(out, stamp)
    return {
        "files": len(files),
        "skipped": len(files) - len(todo),
        "done": len(todo) + len(walk_errors),
        "errors": errors,
        "seconds": time.perf_counter() - started,
        "notes": notes,
    }


def _task_size(files: int, cpus: float) -> int:
    """Files per task: about two tasks per CPU, so that every CPU stays busy to the end
    while each task runs long enough to pay for Ray's per-task cost (tens of ms on a busy
    2-core machine: 128-file tasks ran at 0.68x the CLI there, 543-file ones at 0.97x);
    at most 4,096 files, so a lost task costs little and a task's output stays small."""
    per = -(-files // int(2 * max(1.0, cpus)))
    return max(64, min(4096, per))


def _count_errors(out: str, stamp: str) -> int:
    import pyarrow.parquet as pq

    n = 0
    for f in _parquet_files(out):
        if os.path.basename(f).startswith(f"run-{stamp}_"):
            errors = pq.read_table(f, columns=["error"]).column("error")
            n += len(errors) - errors.null_count
    return n
