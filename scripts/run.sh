#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds den and runs the main job: DEN on 10-task Permuted
# Fashion-MNIST with the released code's defaults. Extra arguments go to `den run`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target den
./build/cli/den run "$@"
