#!/usr/bin/env bash
# Configures and builds the release preset (build/release). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
./ci/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
