#!/usr/bin/env bash
# Installs the Debian packages the collector and its tests need, when missing.
# Usage: scripts/install-deps.sh [--test]
#   (no flag)  build and run: librocksdb-dev libssl-dev zlib1g-dev
#   --test     also what the test suite uses: openssl (CLI), netcat-openbsd
# Idempotent: installs nothing when everything is present. Uses sudo when not root.
set -euo pipefail

packages=(librocksdb-dev libssl-dev zlib1g-dev pkg-config)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(openssl netcat-openbsd)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ "$(id -u)" != "0" ]]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
