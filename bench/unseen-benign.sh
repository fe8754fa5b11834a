#!/usr/bin/env bash
# False positives of the built-in PE model on benign software it has never seen: every PE
# file (.exe/.dll/.pyd) in pinned Windows wheels of 49 PyPI projects (MSVC, clang-cl, MinGW,
# Rust and Go toolchains; x64, x86, ARM64), minus anything in ../shared/data/pe-benign.
# The binaries are downloaded to ~/.cache/mallard/unseen-benign and never committed.
#
#   bash bench/unseen-benign.sh [MALLARD_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/mallard/target}/release/mallard}
DIR=$HOME/.cache/mallard/unseen-benign
mkdir -p "$DIR"/wheels "$DIR"/pe
SHARED=${SHARED:-../shared}

X64="aiohttp==3.14.5 bcrypt==5.0.0 brotli==1.2.1 cffi==2.1.1 charset_normalizer==3.5.2
clang_format==23.1.5 cmake==4.4.5 contourpy==1.3.3 cryptography==50.0.2 debugpy==1.8.22
frozenlist==1.8.0 greenlet==3.5.6 grpcio==1.85.3 h5py==3.16.0 kiwisolver==1.5.1
llvmlite==0.50.0 lz4==4.4.5 markupsafe==3.0.4 matplotlib==3.11.2 msgpack==1.2.4
multidict==7.2.1 ninja==1.13.2 numba==0.68.1 orjson==3.13.0 pandas==3.1.1
psycopg2_binary==2.9.13 pyarrow==26.0.1 pydantic_core==2.50.5 pygame==2.6.1
pyinstaller==6.22.3 pymupdf==2.0 pywinpty==3.1.2 pyyaml==6.0.4 pyzmq==27.3.0
regex==2026.11.19 rpds_py==2026.9.1 ruff==0.17.6 scipy==1.17.1 simplejson==4.3.0
sqlalchemy==2.1.9 tokenizers==0.23.3 tornado==6.6.1 ujson==6.1.0 wrapt==2.5.2 yarl==1.25.1
zstandard==0.25.0"
X86="cryptography==48.0.1 orjson==3.12.0 pygame==2.6.1 pyinstaller==6.22.3 pyzmq==27.3.0"
ARM="cryptography==46.0.3 orjson==3.13.0 pydantic_core==2.50.5 pyinstaller==6.22.3 ruff==0.17.6"
# distlib, pip and setuptools (script launchers) left this bench when the PE model began to
# train on their other versions (corpus/benign/build.sh): they would no longer be unseen.
ANY=""

get() { # platform, specs...
    local plat=$1; shift
    for s in "$@"; do
        if [ -n "$plat" ]; then
            pip download -q --no-deps --only-binary=:all: --platform "$plat" --python-version 3.11 -d "$DIR/wheels/$plat" "$s"
        else
            pip download -q --no-deps -d "$DIR/wheels/any" "$s"
        fi || echo "warning: could not download $s ($plat)" >&2
    done
}
if [ ! -f "$DIR/.downloaded" ]; then
    get win_amd64 $X64; get win32 $X86; get win_arm64 $ARM; get "" $ANY
    touch "$DIR/.downloaded"
fi

[ -n "$ANY" ] || rm -rf "$DIR/wheels/any"   # wheels of projects that left the bench
rm -rf "$DIR/pe" && mkdir -p "$DIR/pe"
python3 - "$DIR" "$SHARED/data/pe-benign/MANIFEST.tsv" <<'PY'
import csv, glob, hashlib, os, sys, zipfile
d, manifest = sys.argv[1], sys.argv[2]
known = {r["sha256"] for r in csv.DictReader(open(manifest), delimiter="\t")}
seen, rows = set(), []
for whl in sorted(glob.glob(f"{d}/wheels/*/*.whl")):
    plat = os.path.basename(os.path.dirname(whl))
    pkg, ver = os.path.basename(whl).split("-")[:2]
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            if not info.filename.lower().endswith((".exe", ".dll", ".pyd")):
                continue
            b = z.read(info)
            h = hashlib.sha256(b).hexdigest()
            if b[:2] != b"MZ" or h in known or h in seen:
                continue
            seen.add(h)
            name = f"{pkg}-{ver}__{plat}__{h[:8]}__{os.path.basename(info.filename)}"
            with open(f"{d}/pe/{name}", "wb") as f:
                f.write(b)
            rows.append((name, h, len(b), pkg, plat))
with open(f"{d}/MANIFEST.tsv", "w") as f:
    f.write("name\tsha256\tsize\tpackage\tplatform\n")
    for r in rows:
        f.write("\t".join(map(str, r)) + "\n")
print(f"{len(rows)} unseen benign PE files from {len({r[3] for r in rows})} projects")
PY

"$BIN" scan --json -q "$DIR/pe" > "$DIR/scan.jsonl" || true
python3 - "$DIR/scan.jsonl" <<'PY'
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
v = collections.Counter(r["verdict"] for r in rows)
pkg = lambda r: r["path"].rsplit("/", 1)[-1].split("-")[0]
flagged = [r for r in rows if r["verdict"] == "malicious"]
projects = {pkg(r) for r in rows}
print(f"files: {len(rows)}, malicious {v['malicious']}, benign {v['benign']}, errors {v['error']}")
print(f"false-positive rate: {v['malicious'] / max(1, len(rows) - v['error']):.2%} of files, "
      f"{len({pkg(r) for r in flagged})}/{len(projects)} projects with a flagged file")
for r in flagged:
    print(f"  {r['path'].rsplit('/', 1)[-1]}: score {r['score']:.4f} by {r['decided_by']}; "
          + ", ".join(x["name"] for x in r["reasons"][:4]))
PY
