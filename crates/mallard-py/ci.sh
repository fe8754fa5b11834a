#!/usr/bin/env bash
# The Python package's CI: builds the wheel with maturin, installs it (what a user does) into
# a cached venv, and runs tests/ with pytest against the installed wheel and the CLI.
#
# Env: CARGO_TARGET_DIR (default ~/.cache/mallard/target), MALLARD (the CLI binary to compare
# with; default: built here), MALLARD_SHARED (the shared data, default ../shared beside the
# checkout), MALLARD_PY_VENV (default ~/.cache/mallard/py-venv).
# Exits 0 without testing, after a "skipped:" line, only when Python or pip cannot be had.
set -euo pipefail
cd "$(dirname "$0")"
crate="$(pwd -P)"
root="$(cd ../.. && pwd -P)"
started=$SECONDS

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mallard/target}"
venv="${MALLARD_PY_VENV:-$HOME/.cache/mallard/py-venv}"
# Pinned: the versions this was tested with (numpy 2.4.6 has CPython 3.11 wheels).
pins="maturin==1.16.0 numpy==2.4.6 pytest==9.2.0"
# For mallard.arrow and mallard.pipeline's tests (Arrow, Polars, Ray Data on a local cluster);
# those tests are reported skipped if these cannot be installed.
extra_pins="pyarrow==26.0.1 polars==2.1.0 ray[data]==2.60.0"

skip() {
  echo "skipped: Python package tests (crates/mallard-py): $1"
  exit 0
}

apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >/dev/null 2>&1
}

py="$(command -v python3 || true)"
if [ -z "$py" ]; then
  apt_install python3 python3-venv python3-pip || skip "no python3, and it cannot be installed"
  py="$(command -v python3)" || skip "no python3"
fi

# A venv whose interpreter is gone (a Python upgrade) is made afresh.
if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  if ! "$py" -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    apt_install python3-venv || skip "python3 cannot make a venv (python3-venv missing)"
    "$py" -m venv "$venv" || skip "python3 cannot make a venv"
  fi
fi
# pip runs only when the pins changed: a warm run makes no network request.
if [ "$(cat "$venv/.mallard-pins" 2>/dev/null)" != "$pins" ]; then
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install -q --disable-pip-version-check $pins \
    || skip "pip cannot install $pins"
  echo "$pins" > "$venv/.mallard-pins"
fi
if [ "$(cat "$venv/.mallard-extra-pins" 2>/dev/null)" != "$extra_pins" ]; then
  # shellcheck disable=SC2086
  if (set -f; "$venv/bin/python" -m pip install -q --disable-pip-version-check $extra_pins); then
    echo "$extra_pins" > "$venv/.mallard-extra-pins"
  else
    echo "pip cannot install $extra_pins: the Arrow, Polars and Ray tests will be skipped"
  fi
fi

# As .ci/run does (same stamp): a cache filled from another checkout keeps that checkout's
# paths in our crates, so they are rebuilt (dependencies stay cached).
stamp="$CARGO_TARGET_DIR/mallard-checkout"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$root" ]; then
  for d in "$root"/crates/*/; do
    (cd "$root" && cargo clean --release -p "$(basename "$d")" >/dev/null 2>&1) || true
  done
fi
mkdir -p "$CARGO_TARGET_DIR"
echo "$root" > "$stamp"

echo "== wheel (maturin build --release: the workspace's build, shared with the tests)"
wheels="$CARGO_TARGET_DIR/wheels-ci"
rm -rf "$wheels"
"$venv/bin/maturin" build --release --locked --out "$wheels"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
  "$wheels"/mallard-*.whl

if [ -z "${MALLARD:-}" ]; then
  echo "== CLI to compare with (cargo build --release --bin mallard)"
  (cd "$root" && cargo build --release --locked --bin mallard)
  export MALLARD="$CARGO_TARGET_DIR/release/mallard"
fi
export MALLARD

echo "== pytest (against the installed wheel)"
# From tests/, so that `import mallard` finds the installed wheel, not python/mallard.
cd "$crate/tests"
"$venv/bin/python" -m pytest -q -rs -p no:cacheprovider
echo "python package: $((SECONDS - started)) s"
