#!/usr/bin/env bash
# The request end to end (docs/image-request.md): PyTorch trains two CNNs on Fashion-MNIST classes
# 0-7, written as PNG class folders (a plain conv net, which den maps whole, and a residual CNN with
# BatchNorm, whose residual blocks den runs as a frozen trunk); den imports each with M PNGs per old
# class as its memory
# (M = 0, 5, 20), learns a task of two new classes from folders named after them (bag, ankle_boot),
# and predicts the whole PNG test set without task ids. Prints the figures of each M against the
# model's own accuracy, retraining on all the data (the upper bound) and fine-tuning.
#
#   scripts/image_request.sh [DEN] [WORK]     DEN: the den executable (default build/cli/den)
#
# Environment: DEN_REQUEST_DATA (default /usr/share/datasets/fashion-mnist, Debian's
# dataset-fashion-mnist), DEN_REQUEST_EPOCHS (PyTorch epochs, default 4), DEN_REQUEST_MAX_ITER
# (den's iterations per phase, default 1000), DEN_REQUEST_MEMORY (default "0 5 20"),
# DEN_REQUEST_MODELS (default "plain residual").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
den=${1:-$root/build/cli/den}
work=${2:-$root/build/image-request}
data=${DEN_REQUEST_DATA:-/usr/share/datasets/fashion-mnist}
python=/usr/bin/python3  # Debian's python3-torch, the version of the LibTorch den links
script=$root/examples/image_request/fashion_cnn.py
max_iter=${DEN_REQUEST_MAX_ITER:-1000}
mkdir -p "$work"

if [ ! -d "$work/test" ]; then
  echo "== Fashion-MNIST as PNG class folders"
  "$python" "$script" prepare "$data" "$work"
fi
for model in ${DEN_REQUEST_MODELS:-plain residual}; do
if [ ! -f "$work/$model.pt" ]; then
  echo "== PyTorch: the $model net on classes 0-7, and the references on all ten"
  "$python" "$script" train "$work" "$model"
fi
files=("$model.pt")
if [ "$model" = residual ]; then files+=("$model.onnx"); fi  # the Keras route: the same model through ONNX

for file in "${files[@]}"; do
for memory in ${DEN_REQUEST_MEMORY:-0 5 20}; do
  run=$work/${file/./-}-memory$memory
  mkdir -p "$run"
  start=$(date +%s)
  echo "== den import $file with $memory PNGs per old class"
  memory_flags=()
  if [ "$memory" -gt 0 ]; then memory_flags=(--data "$work/memory$memory" --exemplars "$memory"); fi
  "$den" import "$work/$file" -o "$run/run.den" --input-shape 1,28,28 --max-iter "$max_iter" "${memory_flags[@]}" \
    > "$run/import.log"
  grep -E "^frozen trunk|^imported|^note" "$run/import.log" || true
  echo "== den add-task: bag and ankle_boot from their own folders"
  "$den" add-task "$run/run.den" --data "$work/new" --quiet
  echo "== den predict --images: the whole test set, among all classes, and with task 1's head"
  "$den" predict "$run/run.den" --images "$work/test" -o "$run/preds.csv" --quiet
  "$den" predict "$run/run.den" --images "$work/test" --task 1 -o "$run/preds_task1.csv" --quiet
  echo "den: $(( $(date +%s) - start )) s for import, add-task and two predictions" | tee "$run/seconds.txt"
  "$den" inspect "$run/run.den" | grep -E "^network|^frozen"
  "$python" "$script" check "$work" "$model" "$run" || status=1
done
done
done
exit "${status:-0}"
