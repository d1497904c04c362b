#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time (docs/fuzzing.md).
#
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags…]   one target
#   scripts/fuzz.sh all SECONDS [libFuzzer flags…]      every target, one after the other
#   scripts/fuzz.sh list                                the targets
#
# Builds `flashback-fuzz` with `-sanitize=fuzzer,address` in .build/fuzz (only the small, pure
# targets it imports are instrumented; the service build in .build is left alone). New inputs go
# to .build/fuzz-corpus/TARGET; the committed seeds in Fuzz/corpus/TARGET are read, not written.
# A crash leaves its input in .build/fuzz-artifacts/ and exits non-zero: copy it to
# Fuzz/regressions/TARGET/ so that the unit tests replay it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=$(ls Fuzz/corpus)
if [[ "${1:-}" == "list" ]]; then echo "$targets"; exit 0; fi
if [[ $# -lt 2 ]]; then
    echo "usage: scripts/fuzz.sh TARGET|all SECONDS [libFuzzer flags…]   (targets: $(echo $targets))" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2
if [[ "$target" != "all" && ! -d "Fuzz/corpus/$target" ]]; then
    echo "unknown target '$target' (targets: $(echo $targets))" >&2
    exit 2
fi

scratch=.build/fuzz
mkdir -p "$scratch"
# (gold warns about every ASan helper symbol it cannot export: the log keeps them out of sight)
if ! swift build -c release --product flashback-fuzz --scratch-path "$scratch" \
        --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING >"$scratch/build.log" 2>&1; then
    grep -v 'Cannot export local symbol' "$scratch/build.log" >&2
    exit 1
fi
binary="$scratch/release/flashback-fuzz"

# The Swift crash reporter would hang libFuzzer's crash handling; Swift runtime caches look like
# leaks to LeakSanitizer.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}"

run_one() {
    local name=$1
    shift
    local work=".build/fuzz-corpus/$name"
    mkdir -p "$work" .build/fuzz-artifacts
    echo "== $name: ${seconds} s" >&2
    FLASHBACK_FUZZ_TARGET="$name" "$binary" "$work" "Fuzz/corpus/$name" \
        -dict="Fuzz/dictionaries/$name.dict" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix=".build/fuzz-artifacts/$name-" "$@"
}

if [[ "$target" == "all" ]]; then
    for name in $targets; do run_one "$name" "$@"; done
else
    run_one "$target" "$@"
fi
