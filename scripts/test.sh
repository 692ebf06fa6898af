#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds den and runs the default test suite (ctest -LE slow).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
ctest --test-dir build -LE slow --output-on-failure -j"$(nproc)"
# The sanitizer stage (DEN_SANITIZE_STAGE=0 skips it): the reader, checkpoint, graph and ops suites under
# ASan+UBSan (scripts/sanitize.sh: a cold build took 397 s and the tests 18 s on the 2-core machine), then
# the concurrent-predict test under ThreadSanitizer (scripts/tsan.sh), each in a build folder of its own.
if [ "${DEN_SANITIZE_STAGE:-1}" = "1" ]; then
  ./scripts/sanitize.sh
  ./scripts/tsan.sh
fi
