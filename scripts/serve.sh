#!/usr/bin/env bash
# Set-up command 1: install what is missing, build in release mode, run the collector on its
# embedded default (RocksDB in ./data). Extra arguments go to `serve`, e.g. --http-address 0.0.0.0:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product flashback-collector
exec .build/release/flashback-collector serve "$@"
