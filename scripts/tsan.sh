#!/usr/bin/env bash
# ThreadSanitizer over the concurrent-predict test (EngineConcurrency.*, tests/engine/engine_test.cpp),
# in a build of its own (build-tsan/, -DDEN_SANITIZE=thread): Engine::predict and predict_all may run
# from several threads at once. OpenMP and OpenBLAS are not TSan-instrumented, so the test runs with
# one thread each (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1): the threads under test are the test's own.
#   DEN_SANITIZE_JOBS: build jobs (default: all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${DEN_SANITIZE_JOBS:-$(nproc)}"
started=$(date +%s)
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEN_SANITIZE=thread -DDEN_CUDA=OFF \
  -DDEN_BUILD_CLI=OFF -DDEN_BUILD_EXAMPLES=OFF -DDEN_BUILD_BENCH=OFF -DDEN_BUILD_PYTHON=OFF > /dev/null
cmake --build build-tsan -j"$jobs" --target den_engine_tests
built=$(date +%s)
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
./build-tsan/tests/den_engine_tests --gtest_filter='EngineConcurrency.*'
echo "tsan: build $((built - started)) s, tests $(($(date +%s) - built)) s"
