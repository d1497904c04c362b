#!/usr/bin/env bash
# Installs the Debian packages the collector and its tests need, when missing.
# Usage: scripts/install-deps.sh [--test]
#   (no flag)  build and run: librocksdb-dev libsnappy-dev libssl-dev zlib1g-dev
#   --test     also what the test suite uses: openssl (CLI), netcat-openbsd, postgresql-15 (a
#              throwaway cluster per test for cluster mode), prometheus (the
#              server and promtool; also a remote-write receiver), victoria-metrics
#              (single-node: remote-write receiver and stats source in cluster tests), python3 with pip, and moto[server] + boto3 from PyPI (a real
#              S3 endpoint with signature checks), openapi-spec-validator and schemathesis (the
#              OpenAPI document and the API run against it), gcp-storage-emulator + cryptography
#              (a GCS JSON API and a token endpoint for service-account credentials), and
#              azure-storage-blob (Microsoft's Shared Key signer, the reference for Azure tests)
# Idempotent: installs nothing when everything is present. Uses sudo when not root.
set -euo pipefail

packages=(librocksdb-dev libsnappy-dev libssl-dev zlib1g-dev pkg-config)
testing=0
if [[ "${1:-}" == "--test" ]]; then
  testing=1
  packages+=(openssl netcat-openbsd prometheus postgresql-15 victoria-metrics)
  command -v python3 >/dev/null 2>&1 || packages+=(python3 python3-pip)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

sudo_cmd=()
if [[ "$(id -u)" != "0" ]]; then
  sudo_cmd=(sudo)
fi

if ((${#missing[@]} > 0)); then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ((testing)) && ! python3 -c 'import moto.server, boto3, flask, flask_cors' >/dev/null 2>&1; then
  echo "install-deps: installing moto[server] from PyPI" >&2
  python3 -m pip install --quiet 'moto[server]>=5' boto3 ||
    python3 -m pip install --quiet --break-system-packages 'moto[server]>=5' boto3
fi

if ((testing)) && ! { command -v gcp-storage-emulator >/dev/null 2>&1 && python3 -c 'import cryptography' >/dev/null 2>&1; }; then
  echo "install-deps: installing gcp-storage-emulator and cryptography from PyPI (GCS service-account tests)" >&2
  python3 -m pip install --quiet gcp-storage-emulator cryptography ||
    python3 -m pip install --quiet --break-system-packages gcp-storage-emulator cryptography
fi

if ((testing)) && ! python3 -c 'import azure.storage.blob' >/dev/null 2>&1; then
  echo "install-deps: installing azure-storage-blob from PyPI (its Shared Key signer is the Azure reference in tests)" >&2
  python3 -m pip install --quiet azure-storage-blob ||
    python3 -m pip install --quiet --break-system-packages azure-storage-blob
fi

if ((testing)) && ! { python3 -c 'import openapi_spec_validator' >/dev/null 2>&1 && command -v schemathesis >/dev/null 2>&1; }; then
  echo "install-deps: installing openapi-spec-validator and schemathesis from PyPI" >&2
  python3 -m pip install --quiet openapi-spec-validator 'schemathesis>=4.3,<5' ||
    python3 -m pip install --quiet --break-system-packages openapi-spec-validator 'schemathesis>=4.3,<5'
fi
