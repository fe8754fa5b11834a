"""Batch feature extraction throughput: `mallard.features(paths)` against the CLI's
`mallard --threads N features --set SET DIR --out FILE --force`, timed in the same run on
the same files and cores.

    python bench.py [--dir ../../../shared/data/pe-benign] [--set ember-v2] [--repeat 3]

Runs alternate (Python, CLI, Python, CLI, ...) so that other load on the machine falls on
both alike; each figure is the best of --repeat runs. Files are read once first, so both
sides read from the page cache. The CLI's time includes its start-up, a sha256 per file and
writing JSON lines; the Python time includes reading the files and building the array.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mallard

HERE = Path(__file__).resolve().parent


def corpus(folder: Path) -> list:
    """The files the CLI takes from a folder: those starting with MZ, recursively, sorted."""
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            with open(p, "rb") as f:
                if f.read(2) == b"MZ":
                    out.append(p)
    return out


def cli_binary(given):
    if given:
        return given
    if os.environ.get("MALLARD"):
        return os.environ["MALLARD"]
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/mallard/target"))
    return str(Path(target) / "release" / "mallard")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=HERE.parents[2] / "shared/data/pe-benign")
    ap.add_argument("--set", default="ember-v2")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--mallard", help="the CLI binary (default: $MALLARD, else the release build)")
    a = ap.parse_args()
    cli = cli_binary(a.mallard)
    if not Path(cli).is_file():
        print(f"no CLI binary at {cli} (cargo build --release --bin mallard, or --mallard)")
        return 2
    paths = corpus(a.dir)
    if not paths:
        print(f"no PE files under {a.dir}")
        return 2
    mb = sum(p.stat().st_size for p in paths) / 1e6
    for p in paths:  # into the page cache
        p.read_bytes()
    items = [str(p) for p in paths]
    out = Path(tempfile.mkdtemp(prefix="mallard-bench-")) / "features.jsonl"
    print(f"{len(paths)} files, {mb:.1f} MB, set {a.set}, mallard {mallard.__version__}, "
          f"{os.cpu_count()} cores, best of {a.repeat}")
    print(f"{'threads':>7} {'python MB/s':>12} {'CLI MB/s':>9} {'ratio':>6}")
    for t in [int(x) for x in a.threads.split(",")]:
        py_best = cli_best = float("inf")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            m = mallard.features(items, a.set, threads=t)
            py_best = min(py_best, time.perf_counter() - t0)
            assert m.shape[0] == len(items)
            t0 = time.perf_counter()
            subprocess.run([cli, "-q", "--threads", str(t), "features", "--set", a.set,
                            str(a.dir), "--out", str(out), "--force"], check=True)
            cli_best = min(cli_best, time.perf_counter() - t0)
        py_rate, cli_rate = mb / py_best, mb / cli_best
        print(f"{t:>7} {py_rate:>12.1f} {cli_rate:>9.1f} {py_rate / cli_rate:>6.2f}")
    out.unlink(missing_ok=True)
    out.parent.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
