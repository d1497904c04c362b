#!/usr/bin/env bash
# Set-up command 2: install what is missing and run the whole test suite
# (unit, in-process HTTP, and integration tests that start the built binary), then every fuzz
# target for a bounded time on its committed seed corpus (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
swift build --build-tests
swift test --skip-build
# FLASHBACK_FUZZ_SECONDS=0 skips the fuzz step (e.g. while iterating on one test).
fuzz_seconds="${FLASHBACK_FUZZ_SECONDS:-10}"
if [[ "$fuzz_seconds" != "0" ]]; then
    scripts/fuzz.sh all "$fuzz_seconds"
fi
