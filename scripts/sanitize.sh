#!/usr/bin/env bash
# The sanitizer stage of CI: builds the fast test suites with GCC's AddressSanitizer and
# UndefinedBehaviorSanitizer (-DDEN_SANITIZE=address,undefined, in build-asan/) and runs them.
# The subset is the readers, the checkpoint format, the graph and the ops: the code that handles
# users' bytes and raw memory. The engine and CLI suites train networks and take minutes even
# unsanitized, so they stay in the plain stage.
#   DEN_SANITIZE_JOBS: build jobs (default: all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${DEN_SANITIZE_JOBS:-$(nproc)}"
suites=(den_data_tests den_graph_tests den_ops_tests den_io_tests)
started=$(date +%s)
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEN_SANITIZE=address,undefined \
  -DDEN_CUDA=OFF -DDEN_BUILD_EXAMPLES=OFF -DDEN_BUILD_BENCH=OFF > /dev/null
cmake --build build-asan -j"$jobs" --target "${suites[@]}"
built=$(date +%s)
# LibTorch is not built with LSan in mind (static caches at exit): leaks are not checked.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:${UBSAN_OPTIONS:-}"
export OMP_NUM_THREADS=1
for suite in "${suites[@]}"; do
  # Multi-GiB and timing tests are not for a sanitized build.
  ./build-asan/tests/"$suite" --gtest_brief=1 --gtest_filter='-*Large*:*RealFashionMnist*'
done
echo "sanitize: build $((built - started)) s, tests $(($(date +%s) - built)) s"
