#!/usr/bin/env bash
# Runs the whole test suite, optimised (numeric tests are slow in debug builds).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --build-tests
swift test -c release --skip-build "$@"
