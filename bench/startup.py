#!/usr/bin/env python3
"""Start-up of a one-file PE scan against `mallard --version` (issue 13, item 5).

Runs each command --runs times (default 31), interleaved so that drift in the machine's
load hits all alike, and prints the load average, each command's median (and minimum) and
its difference from `--version`. With --against OLD_BINARY the old binary's commands are
interleaved too, for a before/after on the same load. A benchmark, not a test.

    python3 bench/startup.py [--bin MALLARD] [--against OLD_MALLARD] [--pe FILE] [--runs N]

Binaries are copied first, as `cargo install` would: a file fresh from the linker sits in
small page-cache pages, and mapping those costs more per process start.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/mallard/target"))
SHARED = os.environ.get("SHARED", os.path.join(ROOT, "..", "shared"))


def commands(m, pe):
    return [
        ("--version", [m, "--version"]),
        ("scan PE", [m, "scan", "-q", pe]),
        ("scan PE --no-builtin-rules", [m, "scan", "-q", "--no-builtin-rules", pe]),
        ("scan PE --top 0", [m, "scan", "-q", "--top", "0", pe]),
        ("inspect --builtin pe", [m, "inspect", "--builtin", "pe"]),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(TARGET, "release", "mallard"))
    ap.add_argument("--against", help="an older binary to interleave with --bin")
    ap.add_argument(
        "--pe", default=os.path.join(SHARED, "data", "pe-benign", "setuptools__cli-64.exe")
    )
    ap.add_argument("--runs", type=int, default=31)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    try:
        bins = [("", a.bin)] + ([("old ", a.against)] if a.against else [])
        cmds = []
        for i, (tag, b) in enumerate(bins):
            m = os.path.join(tmp, f"mallard{i}")
            shutil.copy2(b, m)
            cmds += [(tag + name, c) for name, c in commands(m, a.pe)]
        # Warm-up: page cache, and the rules cache a first run builds.
        for _, c in cmds:
            for _ in range(3):
                subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times = {name: [] for name, _ in cmds}
        for _ in range(a.runs):
            for name, c in cmds:
                t0 = time.perf_counter()
                subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - t0)
        print("load average: %.2f %.2f %.2f" % os.getloadavg())
        print(f"file: {a.pe}, {a.runs} runs each, interleaved")
        for tag, _ in bins:
            base = statistics.median(times[tag + "--version"]) * 1e3
            for name, _ in commands("", ""):
                t = times[tag + name]
                med, lo = statistics.median(t) * 1e3, min(t) * 1e3
                print(
                    f"{tag + name:32s} median {med:6.2f} ms  min {lo:6.2f} ms"
                    f"  vs --version {med - base:+6.2f} ms"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
