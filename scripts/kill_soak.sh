#!/usr/bin/env bash
# Kill soak: SIGKILLs `den run --checkpoint` at random moments (training, evaluation, checkpoint
# writes, slowed by NOTE: [kill soak] in cli/run_checkpoints.cpp), resumes each run until it
# finishes, and checks that every one ends bit for bit like an uninterrupted run (the same report
# without wall times and loss curves, the same ONNX export of every task's network) with no temporary file left.
#   usage: scripts/kill_soak.sh [KILLS (20)] [DEN (build/cli/den)]
#   DEN_SOAK_SKIP_AGNOSTIC=1: leave task-agnostic accuracies out of the report comparison (for a
#   den before checkpoint format 2, which did not save the task-agnostic state).
set -euo pipefail
kills="${1:-20}"
den="$(realpath "${2:-build/cli/den}")"
work="$(mktemp -d "${TMPDIR:-/tmp}/den-kill-soak-XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"

# A small IDX data set: 6x6 images in 4 classes (class c lights rows c and c+2).
python3 - <<'PY'
import random, struct
for prefix, n, seed in (("train", 400, 1), ("t10k", 120, 2)):
    rng = random.Random(seed)
    img = bytearray(struct.pack(">IIII", 0x803, n, 6, 6)); lab = bytearray(struct.pack(">II", 0x801, n))
    for i in range(n):
        c = i % 4
        img += bytes(180 + rng.randrange(60) if p // 6 in (c, c + 2) else rng.randrange(60) for p in range(36))
        lab.append(c)
    open(f"{prefix}-images-idx3-ubyte", "wb").write(img)
    open(f"{prefix}-labels-idx1-ubyte", "wb").write(lab)
PY
mkdir -p data && mv ./*-ubyte data/
flags="--data data --tasks 3 --hidden 16,8 --max-iter 300 --batch-size 32 --eval-every 20 --k 3 --sigma 0.02 --quiet --threads 1"

same() {  # report $1 equals report $2 without wall times and loss curves
  python3 - "$1" "$2" <<'PY'
import json, os, sys
# A task restored from a checkpoint has no loss curve: its progress was the killed process's.
skip = {"seconds", "optimizer_seconds", "curve"}
if os.environ.get("DEN_SOAK_SKIP_AGNOSTIC") == "1": skip |= {"task_agnostic_accuracy", "agnostic_matrix"}
def strip(j):
    if isinstance(j, dict): return {k: strip(v) for k, v in j.items() if k not in skip}
    if isinstance(j, list): return [strip(v) for v in j]
    return j
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
sys.exit(0 if a == b else 1)
PY
}

"$den" run $flags --checkpoint ref.den --report ref.json > /dev/null
"$den" export ref.den --task all --format onnx -o ref.onnx > /dev/null
start=$(date +%s%N); "$den" run $flags --checkpoint timing.den > /dev/null; end=$(date +%s%N)
run_ms=$(((end - start) / 1000000))

identical=0
for i in $(seq 1 "$kills"); do
  rm -f run.den run.json
  # Half of the runs with slowed checkpoint writes, so that kills land inside them.
  delay=$((RANDOM % 2 == 0 ? 0 : 40))
  at=$((RANDOM % (run_ms + 1)))
  DEN_TEST_SAVE_DELAY_MS=$delay "$den" run $flags --checkpoint run.den > /dev/null 2>&1 &
  pid=$!
  sleep "$(printf '%d.%03d' $((at / 1000)) $((at % 1000)))"
  kill -KILL "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
  if [ -f run.den ]; then
    "$den" run --resume run.den --quiet --threads 1 --report run.json > /dev/null
  else
    "$den" run $flags --checkpoint run.den --report run.json > /dev/null
  fi
  "$den" export run.den --task all --format onnx -o run.onnx > /dev/null
  left=$(find . -name '.*.tmp-*' | wc -l)
  report=same; same ref.json run.json || report=differs
  network=same; cmp -s ref.onnx run.onnx || network=differs
  if [ "$report" = same ] && [ "$network" = same ] && [ "$left" -eq 0 ]; then
    identical=$((identical + 1))
  else
    echo "kill $i (at ${at} ms, save delay ${delay} ms): report $report, network $network, $left temporaries left" >&2
    cp run.json "kill-$i.json" 2> /dev/null || true
    [ -z "${DEN_SOAK_KEEP:-}" ] || cp -r "$work" "$DEN_SOAK_KEEP"
  fi
done
echo "kill soak: $identical of $kills identical (uninterrupted run ${run_ms} ms)"
[ "$identical" -eq "$kills" ]
