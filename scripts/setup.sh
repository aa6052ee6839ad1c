#!/usr/bin/env bash
# One-command set-up: a virtualenv in .venv with the CPU build of PyTorch and m2fp with all extras.
#   bash scripts/setup.sh               install only (what CI and the tests need: no weights)
#   bash scripts/setup.sh --with-model  also fetch the default (multi-person) model into the
#                                       cache with `m2fp model download` (HTTPS, sizes and
#                                       sha256 checked, an interrupted transfer resumed when
#                                       run again); `m2fp serve` then finds it without --model
set -euo pipefail
cd "$(dirname "$0")/.."
with_model=0
for argument in "$@"; do
  case "$argument" in
    --with-model) with_model=1 ;;
    -h | --help)
      sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "setup.sh: unknown option $argument (use --with-model or --help)" >&2
      exit 2
      ;;
  esac
done
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# CPU wheel first: a bare "torch" requirement would pull a multi-GB CUDA build
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[torch,server,crypto,ray,test]"
# checkov (the deployment files' scan, tests/deploy/test_checkov.py) in a tool venv of its own:
# it pins packaging and networkx to versions older than the project's
[ -x .venv-checkov/bin/python ] || "$PYTHON" -m venv .venv-checkov
.venv-checkov/bin/python -m pip install --quiet -r scripts/checkov-requirements.txt
echo "m2fp is installed in .venv (try: .venv/bin/m2fp --help)"
if [ "$with_model" = 1 ]; then
  .venv/bin/m2fp model download
  echo "the default model is in the cache: .venv/bin/m2fp serve (no --model needed)"
fi
