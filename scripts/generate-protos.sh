#!/usr/bin/env bash
# Regenerates Sources/RemoteWrite/Proto/remote.pb.swift from remote.proto. Run by hand when the
# .proto changes; the generated file is committed so that no build runs the protoc plugin.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift built from swift-protobuf at
# the version Package.swift names:
#   git clone https://github.com/apple/swift-protobuf /tmp/swift-protobuf
#   git -C /tmp/swift-protobuf checkout 1.39.0
#   swift build -c release --package-path /tmp/swift-protobuf --product protoc-gen-swift
#   PROTOC_GEN_SWIFT=/tmp/swift-protobuf/.build/release/protoc-gen-swift scripts/generate-protos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
plugin="${PROTOC_GEN_SWIFT:-$(command -v protoc-gen-swift || true)}"
[[ -x "$plugin" ]] || { echo "generate-protos: set PROTOC_GEN_SWIFT to a protoc-gen-swift binary" >&2; exit 1; }
protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Package \
  --proto_path=Sources/RemoteWrite/Proto --swift_out=Sources/RemoteWrite/Proto remote.proto
echo "generated Sources/RemoteWrite/Proto/remote.pb.swift"
