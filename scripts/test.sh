#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds den and runs the default test suite (ctest -LE slow).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
ctest --test-dir build -LE slow --output-on-failure -j"$(nproc)"
