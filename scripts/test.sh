#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds den and runs the default test suite (ctest -LE slow).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
ctest --test-dir build -LE slow --output-on-failure -j"$(nproc)"
# The ASan+UBSan stage (scripts/sanitize.sh): opt-in until its time on CI is measured.
if [ "${DEN_SANITIZE_STAGE:-0}" = "1" ]; then ./scripts/sanitize.sh; fi
