#!/usr/bin/env bash
# Installs the clamd clients that tests/clients.rs drives against `mallard serve`, none of
# them written here: Debian's clamdscan (apt) and the PyPI `clamd` client (a cached venv).
# Prints `skipped: ...` for a client that cannot be installed, and always exits 0: the
# caller (.ci/run) runs the client tests only for the clients that are there.
#
# Env: MALLARD_SERVE_VENV (default ~/.cache/mallard/serve-clients-venv).
set -uo pipefail
venv="${MALLARD_SERVE_VENV:-$HOME/.cache/mallard/serve-clients-venv}"
# Pinned: the version the tests were written against.
pin="clamd==1.0.2"

if ! command -v clamdscan >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clamdscan) \
      >/dev/null 2>&1 || true
  fi
  command -v clamdscan >/dev/null 2>&1 \
    || echo "skipped: Debian's clamdscan client (apt-get install clamdscan failed or is not available here)"
fi

py="$(command -v python3 || true)"
if [ -z "$py" ]; then
  echo "skipped: PyPI clamd client (no python3)"
  exit 0
fi
if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  "$py" -m venv "$venv" >/dev/null 2>&1 || { rm -rf "$venv"; echo "skipped: PyPI clamd client (python3 cannot make a venv)"; exit 0; }
fi
# pip runs only when the pin changed: a warm run makes no network request.
if [ "$(cat "$venv/.mallard-pin" 2>/dev/null)" != "$pin" ]; then
  if "$venv/bin/python" -m pip install -q --disable-pip-version-check "$pin" >/dev/null 2>&1; then
    echo "$pin" > "$venv/.mallard-pin"
  else
    echo "skipped: PyPI clamd client (pip cannot install $pin)"
  fi
fi
exit 0
