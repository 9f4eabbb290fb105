#!/usr/bin/env bash
# Run every benchmark in turn and keep the output in bench/results/<UTC time>.txt.
# Needs: the project venv (.venv), wrk and nginx (apt-get install -y wrk nginx) and proxpi in
# bench/.venv-proxpi (python3 -m venv bench/.venv-proxpi &&
# bench/.venv-proxpi/bin/pip install proxpi gunicorn). Each script checks its own tools and
# says what is missing. About 12 minutes in all on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-.venv/bin/python}
mkdir -p bench/results
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ).txt"
run() {
    echo "== bench.$1" | tee -a "$out"
    "$python" -m "bench.$1" "${@:2}" 2>&1 | tee -a "$out"
    echo | tee -a "$out"
}
run engine
run pages
run access_log
run files
run hot_pages
run hot_files
echo "results saved in $out"
