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
# pip's full output goes here; the terminal gets one line per step (and the log's end if a step fails).
LOG="$VENV/setup.log"

step() {  # step "what" command...: run quietly into $LOG, say done or show why not
  printf '%s ... ' "$1"
  local start=$SECONDS
  echo "=== $(date '+%F %T') $1: ${*:2}" >>"$LOG"
  if "${@:2}" >>"$LOG" 2>&1; then
    echo "done ($((SECONDS - start)) s)"
  else
    echo "FAILED"
    echo "---- the end of $LOG (the whole log is there):" >&2
    tail -n 25 "$LOG" >&2
    exit 1
  fi
}

index_answers() {  # does PyTorch's CPU index answer within seconds? pip asks (its own certificates, the
  # proxy in the environment), --isolated so that no other index or wheel folder configured for pip answers instead
  "$PY" -m pip --isolated index versions torch --index-url "$1" --timeout 5 --retries 0 >>"$LOG" 2>&1
}

setup() {
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV" || { echo "could not create $VENV with python3 -m venv (Python 3.10+ with venv needed)" >&2; exit 1; }
  fi
  : >>"$LOG"
  if ! "$PY" -c "import torch" 2>/dev/null; then
    if [ -n "$TORCH_INDEX_URL" ] && ! index_answers "$TORCH_INDEX_URL"; then
      echo "PyTorch's CPU index ($TORCH_INDEX_URL) does not answer; taking PyTorch from pip's default index instead."
      TORCH_INDEX_URL=""
    fi
    local torch_spec
    torch_spec=$(grep -E '^torch[<>=]' requirements.txt | head -n 1 || true)  # the version the workbook is tested with
    step "Installing PyTorch${TORCH_INDEX_URL:+ (CPU build)} (a few minutes the first time)" \
      "$PY" -m pip install --progress-bar off "${torch_spec:-torch}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  fi
  step "Installing the workbook's packages ($1)" "$PY" -m pip install --progress-bar off -r "$1"
  # kernels load the notebook help at start, RISE's shortcuts spare text boxes, nbconvert exports accessibly
  "$PY" -m helpers setup-jupyter >>"$LOG" 2>&1 || echo "Note: could not configure Jupyter for the workbook (see $LOG)."
}

case "${1:-}" in
  lab)
    setup requirements.txt
    args=(notebooks/ --ServerApp.log_level=WARN)  # quiet: the URL to open is still printed
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
