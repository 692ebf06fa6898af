#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds den and runs the main job: DEN on 10-task Permuted
# Fashion-MNIST with the `den` preset (docs/algorithm.md "Presets"). Extra arguments go to `den run`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target den
# Transparent huge pages for glibc's large allocations: each task of a permuted stream is a fresh
# ~190 MB copy of the data, and first touches of 4 KiB pages cost ~3 ms per MiB on the 2-core
# machine (NOTE: [huge pages] in engine/training/cache_storage.cpp). A 10-task run at --max-iter 1 took
# 20.0 s with it and 25.8 s without, at the same peak memory.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1"
./build/cli/den run "$@"
