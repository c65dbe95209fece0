#!/usr/bin/env bash
# Set up (once) and run bigseg from a fresh checkout.
#   bash deploy/dev.sh demo   # synthesize a volume, segment it on a local Dask cluster, report
#   bash deploy/dev.sh test   # the test suite
# The virtual environment lives in .venv; torch is pinned to the CPU wheel 2.13.0 so that pip
# never pulls the multi-GB CUDA build (on a GPU machine, install the matching CUDA torch first).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import bigseg, torch, monai" 2>/dev/null; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev]"
fi
cmd=${1:-demo}
shift || true
case "$cmd" in
  demo) exec .venv/bin/bigseg demo "${@:-demo-output}" ;;
  test) exec .venv/bin/python -m pytest -q "$@" ;;
  *) echo "usage: bash deploy/dev.sh demo [OUTDIR] | test [PYTEST ARGS]" >&2; exit 2 ;;
esac
