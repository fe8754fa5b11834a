"""`mallard.scan` against `mallard scan --json`, the command it mirrors."""

import json
import subprocess

import pytest

import mallard
from conftest import PE_BENIGN, need


def cli_scan(binary, *paths, sort=False):
    args = [str(binary), "-q", "scan", "--json", *map(str, paths)]
    if sort:
        args.append("--sort")
    p = subprocess.run(args, capture_output=True, text=True)
    assert p.returncode in (0, 1, 2), p.stderr
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def test_scan_equals_cli_json(mallard_cli, benign_files):
    picks = benign_files[:: max(1, len(benign_files) // 12)]
    for f in picks:
        ours = mallard.scan(f)
        (theirs,) = cli_scan(mallard_cli, f)
        assert ours == theirs, f.name
        assert ours["verdict"] in ("benign", "malicious")
        assert isinstance(ours["score"], float) and ours["reasons"]


def test_scan_of_bad_files_equals_cli_json(mallard_cli, tmp_path):
    garbage = tmp_path / "garbage.exe"
    garbage.write_bytes(b"MZ" + bytes(range(256)) * 3)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.exe"
    for f in (garbage, empty, missing):
        ours = mallard.scan(str(f))
        (theirs,) = cli_scan(mallard_cli, f)
        assert ours == theirs, f.name
    assert mallard.scan(missing)["verdict"] == "error"


def test_scan_many_equals_cli_sorted(mallard_cli, tmp_path):
    folder = need(PE_BENIGN)
    few = sorted(folder.glob("*.exe"))[:6]
    for f in few:
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "notes.txt").write_text("not scanned: neither PE nor report\n")
    ours = mallard.scan_many([tmp_path], threads=2)
    theirs = cli_scan(mallard_cli, tmp_path, sort=True)
    assert ours == theirs and len(ours) == len(few)


def test_scan_arguments():
    with pytest.raises(ValueError, match="folder"):
        mallard.scan(".")
    with pytest.raises(ValueError, match="threshold"):
        mallard.scan("x.exe", threshold=1.5)
    with pytest.raises(ValueError, match="threads"):
        mallard.scan_many(["."], threads=0)
