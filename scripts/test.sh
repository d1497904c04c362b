#!/usr/bin/env bash
# Set-up command 2: install what is missing and run the whole test suite
# (unit, in-process HTTP, and integration tests that start the built binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
swift build --build-tests
swift test --skip-build
