#!/usr/bin/env bash
# Command two: set up, lint, and run the whole test suite (slow tests included; tests/test_docs.py builds
# the docs site with warnings as errors), then the tests
# whose outcome depends on float rounding (marker `numerics`) once more with ATen's kernels for
# the baseline instruction set (ATEN_CPU_CAPABILITY=default), so another instruction set than
# this CPU's best is exercised on every run. Extra arguments go to pytest and skip the second
# pass, e.g. `bash tools/test.sh -m "not slow"`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
ruff check .
python -m pytest "$@"
if [ $# -eq 0 ]; then
    echo "[test] the numerics tests again under ATEN_CPU_CAPABILITY=default" >&2
    ATEN_CPU_CAPABILITY=default python -m pytest -m numerics -q -p no:cacheprovider
fi
