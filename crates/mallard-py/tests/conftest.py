"""Shared fixtures: the pe-benign corpus and reference outputs in ../shared, and the CLI.

Tests that need either are skipped with the reason shown (pytest -rs), never passed."""

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]


def _shared() -> Path:
    env = os.environ.get("MALLARD_SHARED")
    return Path(env) if env else REPO.parent / "shared"


SHARED = _shared()
PE_BENIGN = SHARED / "data" / "pe-benign"
EMBER_REF = SHARED / "baselines" / "ember_reference" / "pe-benign"
EMBER3_REF = SHARED / "baselines" / "ember2024_reference"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data beside the checkout)")
    return path


def read_jsonl(path: Path) -> list:
    """A JSON-lines file, or its .gz twin (the reference runners gzip large outputs)."""
    for p in (path, Path(str(path) + ".gz")):
        if p.exists():
            opener = gzip.open if p.suffix == ".gz" else open
            with opener(p, "rt", encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
    pytest.skip(f"needs {path} (the shared reference outputs)")


def as_f32(values) -> np.ndarray:
    """Reference floats (exact doubles of float32 values) as float32, bit for bit."""
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a, np.float32), np.ascontiguousarray(b, np.float32)
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="session")
def benign_files() -> list:
    """The pe-benign files named in MANIFEST.tsv, sorted by name."""
    manifest = need(PE_BENIGN / "MANIFEST.tsv")
    lines = manifest.read_text(encoding="utf-8").splitlines()
    col = lines[0].split("\t").index("name")
    names = sorted(line.split("\t")[col] for line in lines[1:] if line.strip())
    return [PE_BENIGN / n for n in names]


def cli() -> Path:
    """The `mallard` binary: $MALLARD, else the release build in CARGO_TARGET_DIR."""
    env = os.environ.get("MALLARD")
    if env:
        # Named on purpose (ci.sh, .ci/run): missing is an error, not a reason to skip.
        if not (Path(env).is_file() and os.access(env, os.X_OK)):
            pytest.fail(f"MALLARD={env} is not an executable file")
        return Path(env)
    candidates = []
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        candidates.append(Path(target) / "release" / "mallard")
    candidates.append(REPO / "target" / "release" / "mallard")
    on_path = shutil.which("mallard")
    if on_path:
        candidates.append(Path(on_path))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    pytest.skip("needs the mallard CLI (set MALLARD, or cargo build --release --bin mallard)")


@pytest.fixture(scope="session")
def mallard_cli() -> Path:
    return cli()


def cli_features(binary: Path, folder: Path, feature_set: str, out: Path) -> dict:
    """`mallard features --set SET FOLDER --out OUT`: vectors by file name."""
    subprocess.run(
        [str(binary), "-q", "features", "--set", feature_set, str(folder),
         "--out", str(out), "--force"],
        check=True,
    )
    rows = {}
    for rec in read_jsonl(out):
        assert "error" not in rec, rec
        rows[Path(rec["path"]).name] = as_f32(rec["vector"])
    return rows
