#!/usr/bin/env bash
# Runs den's benchmark suites, writes Google Benchmark JSON to bench/results/ and prints one summary
# table with the ratios. With python3-torch installed (apt install python3-torch) it also times the
# plain PyTorch reference of the first-task phase against `den run` on the same work.
# Usage: bench/run.sh [build-dir] [iterations for the reference comparison, default 1000]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
iters=${2:-1000}
out=bench/results
mkdir -p "$out"

cmake --build "$build" -j"$(nproc)"

suites=()
for suite in engine graph ops; do
  exe="$build/bench/den_${suite}_bench"
  [ -x "$exe" ] || continue
  echo "== $suite" >&2
  "$exe" --benchmark_out="$out/$suite.json" --benchmark_out_format=json >&2
  suites+=("$out/$suite.json")
done

echo
python3 bench/summarize.py "${suites[@]}"

# End to end: a short den run, samples/s and peak memory (max RSS).
echo
/usr/bin/time -f "%M" -o "$out/den_run.rss" "$build/cli/den" run --tasks 2 --max-iter 300 --quiet \
  --report "$out/den_run.json" > /dev/null
python3 - "$out/den_run.json" "$out/den_run.rss" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
iters = sum(p["iterations"] for t in report["tasks"] for p in t["phases"])
batch = report["config"]["batch_size"]
seconds = report["final"]["seconds"]
rss_mb = int(open(sys.argv[2]).read().split()[-1]) / 1024
print(f"end to end (den run --tasks 2 --max-iter 300): {iters * batch / seconds:,.0f} samples/s, "
      f"{seconds:.1f} s, peak memory {rss_mb:.0f} MiB")
PY

# Side by side with the plain PyTorch reference on the same first-task work.
# Debian's python3-torch lives under /usr/bin/python3, which another python3 on the PATH may hide.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
if "$py" -c "import torch" 2>/dev/null; then
  # The default MLP, then a LeNet-like conv net (docs/performance.md, "Conv layers"): ms per step, both
  # with the same thread count.
  for layers in 312,128 conv5x5:32,maxpool2,conv5x5:64,maxpool2,fc:256,fc:128; do
    ref=$("$py" bench/reference/first_task.py --iters "$iters" --layers "$layers" --threads 2 |
      sed -n 's/.* in \([0-9.]*\) s.*/\1/p')
    "$build/cli/den" run --tasks 1 --max-iter "$iters" --layers "$layers" --early-stop-patience 0 --threads 2 --quiet \
      --report "$out/first_task.json" > /dev/null
    python3 - "$out/first_task.json" "$ref" "$iters" "$layers" <<'PY'
import json, sys
phase = json.load(open(sys.argv[1]))["tasks"][0]["phases"][0]
ref, iters, layers = float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ours, ref_step = phase["seconds"] / phase["iterations"], ref / iters
print(f"first task ({layers}): den {1000 * ours:.2f} ms per step, PyTorch reference {1000 * ref_step:.2f} ms, "
      f"ratio den/reference {ours / ref_step:.3f}")
PY
  done
else
  echo "python3-torch is not installed: skipping the PyTorch reference (apt install python3-torch)"
fi
