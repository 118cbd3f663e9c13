#!/usr/bin/env bash
# Installs the Debian packages cclab needs, skipping what is already present. Idempotent.
set -euo pipefail

packages=(
  cmake g++ make pkg-config git
  libucx-dev               # UCX: the host transport of the hand-written algorithms
  libopenmpi-dev openmpi-bin  # Open MPI: mpirun launch and the MPI reference implementation
  libcli11-dev nlohmann-json3-dev
  libgloo-dev              # Gloo: reference allreduce and broadcast over TCP
  libtomlplusplus-dev      # suite files (cclab suite run)
  libgtest-dev libbenchmark-dev
  libxml2-utils python3    # tests: xmllint checks JUnit reports against their schema, Python reads CSV
  chromium                 # tests: HTML reports open and draw their charts in a headless browser
  libdnnl-dev zlib1g-dev dataset-fashion-mnist  # trainers: oneDNN layers, gzip IDX reader, Fashion-MNIST
  clang libclang-rt-dev    # ci/fuzz.sh: clang and its libFuzzer runtime (only recommended by clang)
  iproute2                 # ci/virtual-cluster.sh: ip and tc for the hosts made of namespaces
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done

command -v npm > /dev/null || missing+=(npm)

if ((${#missing[@]} > 0)); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The chart libraries HTML reports inline (versions pinned by reports/web/package-lock.json); the
# build embeds them, so it works offline from here on.
web="$(dirname "$0")/../reports/web"
if [[ ! -f "$web/node_modules/vega-embed/build/vega-embed.min.js" ]]; then
  echo "install-deps: npm ci in reports/web"
  npm ci --prefix "$web" --no-audit --no-fund
fi
