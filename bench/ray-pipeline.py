#!/usr/bin/env python3
"""Folder-tree featurization side by side, one run: `mallard features --out FILE.parquet`
(the CLI), `mallard.pipeline.featurize_tree` (Ray Data on a local cluster, through the
wheel) and EMBER's extractor under `multiprocessing.Pool` (how EMBER's users featurize
files; EMBER's own scripts vectorize raw features the same way).

    python bench/ray-pipeline.py --ember-features /path/to/ember/features.py [--copies 40]

Input: `--copies` hard-linked copies of shared/data/pe-benign (217 files, 52.1 MB each
copy) in a temporary folder, so the tree is big enough for Ray's scheduling to amortize and
the page cache holds it for every side alike. The CLI and Ray runs alternate, `--rounds`
each; the figure is the median. Ray's cluster start is timed apart (once per run of a
pipeline, not per file). EMBER runs on one copy only (it is ~50x slower), with as many
processes as the machine has cores. Run with the Python that has the wheel, pyarrow and
ray[data] installed (crates/mallard-py/ci.sh makes one: ~/.cache/mallard/py-venv);
EMBER's venv (lief 0.12.3, numpy<1.24, scikit-learn 1.1.3) is made under ~/.cache/mallard
as bench/static-side-by-side.sh makes it.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EMBER_RUNNER = r"""
import multiprocessing, os, sys, time, importlib.util
spec = importlib.util.spec_from_file_location("ember_features", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
files = sys.argv[3:]
ex = None
def init():
    global ex
    ex = mod.PEFeatureExtractor(feature_version=2, print_feature_warning=False)
def one(p):
    with open(p, "rb") as f:
        return ex.feature_vector(f.read())
if __name__ == "__main__":
    n = int(sys.argv[2])
    t = time.perf_counter()
    with multiprocessing.Pool(n, initializer=init) as pool:
        rows = list(pool.imap(one, files, chunksize=4))
    print(time.perf_counter() - t)
"""


def tree(src: Path, dst: Path, copies: int) -> tuple:
    files = sorted(p for p in src.iterdir() if p.is_file() and p.open("rb").read(2) == b"MZ")
    n = size = 0
    for c in range(copies):
        d = dst / f"copy{c:03d}"
        d.mkdir(parents=True)
        for f in files:
            os.link(f, d / f.name)
            n += 1
            size += f.stat().st_size
    return n, size


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ember-features", help="elastic/ember's features.py @ d97a0b5 (omit to skip EMBER)")
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", default="ember-v2")
    ap.add_argument("--mallard", default=os.environ.get("MALLARD"), help="the CLI binary")
    ap.add_argument("--files-per-task", type=int, default=None, help="default: the pipeline's own choice")
    a = ap.parse_args()

    shared = Path(os.environ.get("MALLARD_SHARED", ROOT.parent / "shared"))
    benign = shared / "data" / "pe-benign"
    cli = a.mallard or str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "mallard")
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="mallard-ray-bench-"))
    try:
        n, size = tree(benign, work / "tree", a.copies)
        mb = size / 1e6
        print(f"machine: {platform.processor() or platform.machine()}, {cores} cores, load {load()}")
        print(f"input: {n} files, {mb:.1f} MB ({a.copies} hard-linked copies of pe-benign)")

        import ray
        import mallard.pipeline as mp

        t = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, logging_level="ERROR")
        ray_start = time.perf_counter() - t

        cli_s, ray_s = [], []
        for r in range(a.rounds):
            out = work / f"cli{r}.parquet"
            t = time.perf_counter()
            subprocess.run([cli, "-q", "features", "--set", a.set, str(work / "tree"), "--out", str(out)],
                           check=False)
            cli_s.append(time.perf_counter() - t)
            out = work / f"ray{r}"
            t = time.perf_counter()
            s = mp.featurize_tree([work / "tree"], out, a.set, files_per_task=a.files_per_task)
            ray_s.append(time.perf_counter() - t)
            assert s["done"] == n and s["errors"] == 0, s
            print(f"round {r + 1}: CLI {cli_s[-1]:.2f} s, Ray {ray_s[-1]:.2f} s (load {load()})")
        ray.shutdown()
        c, y = statistics.median(cli_s), statistics.median(ray_s)
        res = {
            "files": n, "mb": round(mb, 1), "cores": cores,
            "cli_mb_s": round(mb / c, 1), "ray_mb_s": round(mb / y, 1),
            "ray_over_cli": round(c / y, 3),
            "ray_cluster_start_s": round(ray_start, 2),
            "ray_over_cli_with_start": round(c / (y + ray_start), 3),
        }
        if a.ember_features:
            venv = Path(os.environ.get("VENV", Path.home() / ".cache/mallard/venv-ember"))
            if not (venv / "bin/python").exists():
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
                subprocess.run([str(venv / "bin/pip"), "install", "-q", "lief==0.12.3",
                                "numpy<1.24", "scikit-learn==1.1.3"], check=True)
            one = sorted(str(p) for p in (work / "tree" / "copy000").iterdir())
            one_mb = sum(os.path.getsize(p) for p in one) / 1e6
            out = subprocess.run([str(venv / "bin/python"), "-c", EMBER_RUNNER, a.ember_features,
                                  str(cores), *one], check=True, capture_output=True, text=True)
            e = float(out.stdout.strip().splitlines()[-1])
            res["ember_mp_mb_s"] = round(one_mb / e, 2)
            res["ray_over_ember_mp"] = round((mb / y) / (one_mb / e), 1)
            print(f"EMBER multiprocessing ({cores} processes, {len(one)} files, {one_mb:.1f} MB): {e:.2f} s")
        print(json.dumps(res))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
