#!/usr/bin/env bash
# Set up a fresh machine: FFmpeg (OS package), a virtual environment in .venv, the project.
# Idempotent: a second run reuses .venv unless pyproject.toml or requirements.lock changed or EXTRAS
# asks for an extra not installed yet.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] ffmpeg/ffprobe not found: installing the OS package (apt-get install ffmpeg)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
  else
    echo "[setup] error: ffmpeg and ffprobe (FFmpeg >= 5.1) are required but not on PATH." >&2
    echo "        Install them, then re-run: 'sudo apt-get install ffmpeg' (Debian/Ubuntu)," >&2
    echo "        'brew install ffmpeg' (macOS) or 'conda install -c conda-forge ffmpeg'." >&2
    exit 1
  fi
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.10 python3; do
    command -v "$cand" >/dev/null 2>&1 && { PY="$cand"; break; }
  done
fi
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "[setup] error: Python >= 3.10 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

# EXTRAS: the optional-dependency groups to install, comma-separated ("dev" = pytest, Ray, MkDocs and
# ruff for `make test`; "" = the pipeline only, for `make demo`)
EXTRAS="${EXTRAS-dev}"
[ -x .venv/bin/python ] || { echo "[setup] creating .venv with $PY"; "$PY" -m venv .venv; }
# The stamp is named after a hash of pyproject.toml + requirements.lock and lists the extras installed
# for them, one per line. A request for extras already installed (a subset: `make demo` after
# `make test`) installs nothing; otherwise the union of both is installed once and recorded. After a
# change to pyproject.toml or requirements.lock the extras of the previous stamp are installed again,
# at the new pins, with the requested ones.
stamp=".venv/.installed-$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)"
have="$(cat "$stamp" 2>/dev/null || cat .venv/.installed-* 2>/dev/null || true)"
want="$( { printf '%s\n' "$have"; tr ', ' '\n\n' <<<"$EXTRAS"; } | sed '/^$/d' | sort -u)"
if [ ! -f "$stamp" ] || [ "$want" != "$have" ]; then
  extras="$(paste -sd, - <<<"$want")"
  echo "[setup] installing the project${extras:+ [$extras]} and its pinned dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e ".${extras:+[$extras]}"
  rm -f .venv/.installed-*
  printf '%s\n' "$want" >"$stamp"
fi
