#!/usr/bin/env bash
# Set up a fresh machine: FFmpeg (OS package), a virtual environment in .venv, the project.
# Idempotent: a second run reuses .venv unless pyproject.toml or requirements.lock changed.
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

# EXTRAS: the optional-dependency groups to install ("dev" = pytest + Ray for the tests; "" = the pipeline only)
EXTRAS="${EXTRAS-dev}"
[ -x .venv/bin/python ] || { echo "[setup] creating .venv with $PY"; "$PY" -m venv .venv; }
stamp=".venv/.installed-$( (cat pyproject.toml requirements.lock; echo "$EXTRAS") | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing the project${EXTRAS:+ [$EXTRAS]} and its pinned dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -c requirements.lock -e ".${EXTRAS:+[$EXTRAS]}"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
