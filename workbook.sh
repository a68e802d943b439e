#!/usr/bin/env bash
# One command per job, on a fresh machine (Linux or macOS, Python 3.10+):
#   bash workbook.sh lab     set up .venv, then open the workbook in JupyterLab (extra arguments go to jupyter lab)
#   bash workbook.sh test    set up .venv with the test-only packages, then run all tests and notebooks
# Extra arguments after "test" go to pytest (e.g. bash workbook.sh test tests/test_data.py).
set -euo pipefail
cd "$(dirname "$0")"

VENV="${WORKBOOK_VENV:-.venv}"
PY="$VENV/bin/python"
# CPU-only PyTorch by default; set TORCH_INDEX_URL="" to take pip's default build instead.
TORCH_INDEX_URL="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"

setup() {
  [ -x "$PY" ] || python3 -m venv "$VENV"
  if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "Installing PyTorch ${TORCH_INDEX_URL:+(CPU build) }..."
    "$PY" -m pip install torch ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  fi
  "$PY" -m pip install --quiet -r "$1"
}

case "${1:-}" in
  lab)
    setup requirements.txt
    args=(notebooks/)
    if [ "$(id -u)" = 0 ]; then
      echo "Note: running as root (common in containers), so JupyterLab is started with --allow-root." >&2
      args+=(--allow-root)
    fi
    echo "Starting JupyterLab: open the URL it prints below (the one with /lab?token=) in a browser."
    echo "Ctrl+C twice stops it."
    exec "$VENV/bin/jupyter" lab "${args[@]}" "${@:2}" ;;
  test)
    setup requirements-dev.txt
    exec "$PY" -m pytest "${@:2}" ;;
  *)
    echo "usage: bash workbook.sh lab | test [pytest arguments]" >&2
    exit 2 ;;
esac
