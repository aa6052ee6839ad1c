#!/usr/bin/env bash
# One-command set-up: a virtualenv in .venv with the CPU build of PyTorch and m2fp with all extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# CPU wheel first: a bare "torch" requirement would pull a multi-GB CUDA build
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[server,crypto,ray,test]"
echo "m2fp is installed in .venv (try: .venv/bin/m2fp --help)"
