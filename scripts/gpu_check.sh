#!/usr/bin/env bash
# The first-GPU-run check (docs/cuda.md). On a machine with an NVIDIA GPU, the CUDA
# toolkit and PyTorch's LibTorch, but no Debian -dev packages and no network:
#   1. env        what the machine has: GPU, driver, nvcc, torch, the CUDA toolkits visible
#   2. configure  cuda/standalone with GoogleTest built from source (.gpu/googletest, see gpu_prepare.sh)
#   3. build      the kernels, ops/, their tests and den_cuda_timing
#   4. tests      ctest: kernel parity against the CPU, the dispatch tests, the fat binary checks
#   5. memcheck, racecheck, synccheck   compute-sanitizer over the CUDA tests
#   6. timing     each kernel's bytes/s over a device-to-device copy (den_ops_bench where Google
#                 Benchmark was found, else den_cuda_timing)
#   7. engine     where the full engine configures (Boost, protobuf, spdlog, CLI11, nlohmann_json found):
#                 `den run` on a short stream on the CPU and on the GPU, compared
# Every log goes to $OUT (default ./gpu-check-out); one summary line per step goes to stdout and to
# $OUT/summary.txt. The steps have time limits that add up to under 9 minutes. Exit status: 0 when no
# step failed (skipped steps do not fail), 1 otherwise.
#
# Environment: OUT, JOBS (default: all cores), DEN_GTEST_SOURCE_DIR (default .gpu/googletest),
# TORCH_PREFIX (default: torch.utils.cmake_prefix_path of the first python3 that imports torch),
# GPU_CHECK_STEPS (default "env configure build tests memcheck racecheck synccheck timing engine").
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-check-out}
mkdir -p "$OUT"
JOBS=${JOBS:-$(nproc)}
STEPS=${GPU_CHECK_STEPS:-env configure build tests memcheck racecheck synccheck timing engine}
BUILD=$ROOT/build-gpu
ENGINE_BUILD=$ROOT/build-gpu-engine
GTEST_DIR=${DEN_GTEST_SOURCE_DIR:-$ROOT/.gpu/googletest}
: >"$OUT/summary.txt"
failed=0

summary() {  # step status detail seconds
  local line
  line=$(printf 'gpu_check: %-10s %-8s %s [%ss]' "$1" "$2" "$3" "$4")
  echo "$line" | tee -a "$OUT/summary.txt"
  if [ "$2" = "FAILED" ]; then failed=1; fi
}
wanted() { [[ " $STEPS " == *" $1 "* ]]; }
have_gpu() { command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; }

# A python3 with torch: the first on the PATH may be another interpreter (pyenv, a venv).
TORCH_PYTHON=""
for py in python3 /usr/bin/python3; do
  if "$py" -c 'import torch' 2>/dev/null; then TORCH_PYTHON=$py; break; fi
done
if [ -z "${TORCH_PREFIX:-}" ] && [ -n "$TORCH_PYTHON" ]; then
  TORCH_PREFIX=$("$TORCH_PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')
fi
TORCH_PREFIX=${TORCH_PREFIX:-}

# PyTorch's CMake files find the toolkit from nvcc: use the one on the PATH, and name its root so
# that another toolkit (a pip-installed one, /usr/local/cuda-X) cannot be picked up instead.
NVCC=$(command -v nvcc || true)
CUDA_ROOT=""
if [ -n "$NVCC" ]; then
  CUDA_ROOT=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
  export CUDACXX=$NVCC CUDA_HOME=$CUDA_ROOT CUDA_PATH=$CUDA_ROOT
fi
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.0;9.0+PTX}  # skips PyTorch's GPU probe (cmake/den_torch.cmake)
GENERATOR=()
if command -v ninja >/dev/null; then GENERATOR=(-G Ninja); fi

if wanted env; then
  start=$SECONDS
  {
    echo "== GPU"; nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 || echo "no nvidia-smi"
    echo "== nvcc: ${NVCC:-none}"; [ -n "$NVCC" ] && "$NVCC" --version | tail -2
    echo "== every nvcc on the PATH"; which -a nvcc 2>&1
    echo "== toolkits under /usr/local"; ls -d /usr/local/cuda* 2>&1
    echo "== python with torch: ${TORCH_PYTHON:-none}"
    [ -n "$TORCH_PYTHON" ] && "$TORCH_PYTHON" -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count())'
    echo "== TORCH_PREFIX=$TORCH_PREFIX TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"
    echo "== cmake"; cmake --version | head -1
    echo "== compute-sanitizer"; command -v compute-sanitizer || echo none
  } >"$OUT/env.log" 2>&1
  gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
  # Distinct toolkits, not paths: a wrapper script that execs a toolkit's nvcc reports the same build.
  toolkits=$(which -a nvcc 2>/dev/null | while read -r n; do "$n" --version 2>/dev/null | tail -1; done | sort -u | wc -l)
  detail="gpu: ${gpu:-none}; nvcc: $([ -n "$NVCC" ] && "$NVCC" --version | grep -o 'release [0-9.]*' || echo none); toolkits on PATH: $toolkits"
  detail+="; torch: $([ -n "$TORCH_PYTHON" ] && "$TORCH_PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none)"
  if [ "$toolkits" -gt 1 ]; then
    summary env FAILED "$detail (more than one toolkit: put one nvcc first on the PATH)" $((SECONDS - start))
  else
    summary env ok "$detail" $((SECONDS - start))
  fi
fi

configured=0
if wanted configure; then
  start=$SECONDS
  if [ -z "$TORCH_PREFIX" ]; then
    summary configure FAILED "no LibTorch: no python3 imports torch; set TORCH_PREFIX" 0
  elif [ ! -f "$GTEST_DIR/CMakeLists.txt" ]; then
    summary configure FAILED "no GoogleTest sources in $GTEST_DIR: run scripts/gpu_prepare.sh where /usr/src/googletest exists and carry .gpu" 0
  else
    cuda_args=()
    [ -n "$NVCC" ] && cuda_args=(-DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$CUDA_ROOT")
    if timeout 180 cmake -S cuda/standalone -B "$BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release \
         -DDEN_CUDA=ON -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DDEN_GTEST_SOURCE_DIR="$GTEST_DIR" "${cuda_args[@]}" \
         >"$OUT/configure.log" 2>&1; then
      configured=1
      summary configure ok "$(grep -o 'den: CUDA kernels.*' "$OUT/configure.log" | head -1)" $((SECONDS - start))
    else
      summary configure FAILED "see configure.log: $(grep -m1 -A2 'CMake Error' "$OUT/configure.log" | tr '\n' ' ' | cut -c1-200)" $((SECONDS - start))
    fi
  fi
fi

built=0
if wanted build; then
  start=$SECONDS
  if [ "$configured" = 0 ] && [ ! -f "$BUILD/CMakeCache.txt" ]; then
    summary build skipped "not configured" 0
  elif timeout 300 cmake --build "$BUILD" -j"$JOBS" >"$OUT/build.log" 2>&1; then
    built=1
    summary build ok "$(find "$BUILD" -maxdepth 1 -type f -executable -name 'den_*' -printf '%f ' | sort)" $((SECONDS - start))
  else
    summary build FAILED "see build.log: $(grep -m1 -E 'error|Error' "$OUT/build.log" | cut -c1-200)" $((SECONDS - start))
  fi
fi

if wanted tests; then
  start=$SECONDS
  if [ "$built" = 0 ]; then
    summary tests skipped "not built" 0
  else
    timeout 240 ctest --test-dir "$BUILD" --output-on-failure -j4 --output-junit "$OUT/ctest.xml" >"$OUT/tests.log" 2>&1
    rc=$?
    line=$(grep -E 'tests passed|tests failed' "$OUT/tests.log" | tail -1)
    skipped=$(grep -c '\*\*\*Skipped' "$OUT/tests.log")
    if [ $rc -eq 0 ]; then
      summary tests ok "$line; $skipped skipped" $((SECONDS - start))
    else
      summary tests FAILED "$line; $skipped skipped; rc $rc (see tests.log)" $((SECONDS - start))
    fi
  fi
fi

for tool in memcheck racecheck synccheck; do
  wanted "$tool" || continue
  start=$SECONDS
  if [ "$built" = 0 ] || [ ! -x "$BUILD/den_cuda_tests" ]; then
    summary "$tool" skipped "den_cuda_tests not built" 0
  elif ! command -v compute-sanitizer >/dev/null; then
    summary "$tool" skipped "no compute-sanitizer on the PATH" 0
  elif ! have_gpu; then
    summary "$tool" skipped "no GPU" 0
  else
    # The parity tests launch every kernel on every shape; the rest of the suite runs no kernel.
    timeout 100 compute-sanitizer --tool "$tool" --error-exitcode 1 "$BUILD/den_cuda_tests" \
      --gtest_filter='*CUDA*' >"$OUT/$tool.log" 2>&1
    rc=$?
    errors=$(grep -m1 'ERROR SUMMARY' "$OUT/$tool.log" || echo "no ERROR SUMMARY line")
    if [ $rc -eq 0 ]; then summary "$tool" ok "$errors" $((SECONDS - start))
    else summary "$tool" FAILED "$errors; rc $rc (see $tool.log)" $((SECONDS - start)); fi
  fi
done

if wanted timing; then
  start=$SECONDS
  if [ "$built" = 0 ]; then
    summary timing skipped "not built" 0
  elif ! have_gpu; then
    summary timing skipped "no GPU" 0
  else
    timeout 120 "$BUILD/den_cuda_timing" >"$OUT/timing.log" 2>&1
    rc=$?
    # Google Benchmark's suite, where it was found: the same kernels through ops::, and the unfused ATen sequence.
    if [ -x "$BUILD/den_ops_bench" ]; then
      timeout 120 "$BUILD/den_ops_bench" --benchmark_filter='_CUDA' --benchmark_min_time=0.05 >"$OUT/ops_bench.log" 2>&1
    fi
    goals=$(grep '^goal' "$OUT/timing.log" | sed 's/^goal //' | tr '\n' ';')
    if [ $rc -eq 0 ]; then summary timing ok "den_cuda_timing: $goals" $((SECONDS - start))
    elif [ $rc -eq 77 ]; then summary timing skipped "no CUDA device" $((SECONDS - start))
    else summary timing FAILED "den_cuda_timing rc $rc (see timing.log)" $((SECONDS - start)); fi
  fi
fi

if wanted engine; then
  start=$SECONDS
  if ! have_gpu; then
    summary engine skipped "no GPU: nothing to compare the CPU run with" 0
  elif [ -z "$TORCH_PREFIX" ]; then
    summary engine skipped "no LibTorch" 0
  elif ! timeout 120 cmake -S . -B "$ENGINE_BUILD" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DDEN_CUDA=ON \
         -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DDEN_BUILD_TESTS=OFF -DDEN_BUILD_EXAMPLES=OFF -DDEN_BUILD_BENCH=OFF \
         >"$OUT/engine-configure.log" 2>&1; then
    missing=$(grep -oE 'Could (not|NOT) find[^(]*' "$OUT/engine-configure.log" | head -3 | tr '\n' ';')
    summary engine skipped "the full engine does not configure here (${missing:-see engine-configure.log}); docs/cuda.md lists what it needs" $((SECONDS - start))
  elif ! timeout 240 cmake --build "$ENGINE_BUILD" -j"$JOBS" --target den >"$OUT/engine-build.log" 2>&1; then
    summary engine FAILED "den does not build (see engine-build.log)" $((SECONDS - start))
  else
    # A short permuted stream from the embedded default data, once per device.
    data=()
    [ -d "$ROOT/.gpu/fashion-mnist" ] && data=(--data "$ROOT/.gpu/fashion-mnist")
    args=(run --quiet "${data[@]}" --tasks 3 --train-limit 2000 --max-iter 200 --seed 1)
    "$ENGINE_BUILD/cli/den" "${args[@]}" --device cpu --report "$OUT/engine-cpu.json" >"$OUT/engine.log" 2>&1 &&
      "$ENGINE_BUILD/cli/den" "${args[@]}" --device cuda --report "$OUT/engine-cuda.json" >>"$OUT/engine.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
      summary engine FAILED "den run rc $rc (see engine.log)" $((SECONDS - start))
    else
      # Matrix products differ in rounding between the BLAS libraries, so parity is within a tolerance.
      verdict=$("$TORCH_PYTHON" - "$OUT/engine-cpu.json" "$OUT/engine-cuda.json" <<'EOF'
import json, sys
cpu, gpu = (json.load(open(p))["final"] for p in sys.argv[1:3])
d = abs(cpu["avg_accuracy"] - gpu["avg_accuracy"])
ok = d <= 0.02
print(("ok" if ok else "FAILED"),
      f"accuracy cpu {cpu['avg_accuracy']:.4f} cuda {gpu['avg_accuracy']:.4f} (|diff| {d:.4f}, tolerance 0.02); "
      f"hidden units cpu {cpu['hidden_units']} cuda {gpu['hidden_units']}; seconds cpu {cpu['seconds']:.1f} cuda {gpu['seconds']:.1f}")
EOF
)
      summary engine "${verdict%% *}" "${verdict#* }" $((SECONDS - start))
    fi
  fi
fi

exit $failed
