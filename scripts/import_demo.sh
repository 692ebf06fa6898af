#!/usr/bin/env bash
# From a PyTorch model to new classes and back out as predictions (docs/import-and-predict.md):
# PyTorch trains an MLP on Fashion-MNIST classes 0-7, den imports it, learns class 8 and then class 9
# from folders of their own, predicts the whole test set without task ids, and the exported
# task-agnostic TorchScript module is checked to give den predict's classes in Python.
#
#   scripts/import_demo.sh [DEN] [WORK]     DEN: the den executable (default build/cli/den)
#
# Environment: DEN_DEMO_DATA (default /usr/share/datasets/fashion-mnist, Debian's
# dataset-fashion-mnist), DEN_DEMO_EPOCHS (PyTorch epochs, default 6), DEN_DEMO_MAX_ITER (den's
# iterations per phase, default 1000). 30 s on 2 idle cores, about 3.5 minutes on busy ones.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
den=${1:-$root/build/cli/den}
work=${2:-$root/build/import-demo}
data=${DEN_DEMO_DATA:-/usr/share/datasets/fashion-mnist}
python=/usr/bin/python3  # Debian's python3-torch, the version of the LibTorch den links
script=$root/examples/import_demo/fashion_mlp.py
mkdir -p "$work"
start=$(date +%s)

echo "== PyTorch: train an MLP on classes 0-7 and save it as TorchScript"
"$python" "$script" train "$data" "$work"

echo "== den import (exemplars of classes 0-7 from the training folder)"
"$den" import "$work/model.pt" -o "$work/run.den" --data "$work/old" --max-iter "${DEN_DEMO_MAX_ITER:-1000}"

for c in 8 9; do
  echo "== den add-task: class $c from its own folder"
  "$den" add-task "$work/run.den" --data "$work/class$c" --quiet --threads 2
done

echo "== den predict: the whole test set, task-agnostic, and task-aware with task 1's head"
"$den" predict "$work/run.den" --data "$data" -o "$work/preds.csv" --scores
"$den" predict "$work/run.den" --data "$data" --task 1 -o "$work/preds_task1.csv"

echo "== den export --task agnostic"
"$den" export "$work/run.den" --task agnostic -o "$work/agnostic.pt"

echo "== growth"
"$den" inspect "$work/run.den" | sed -n '1,40p'

echo "== figures (test set)"
"$python" "$script" check "$data" "$work"
echo "demo finished in $(( $(date +%s) - start )) s"
