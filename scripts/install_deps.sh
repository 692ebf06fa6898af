#!/usr/bin/env bash
# Installs the Debian packages den needs. Idempotent: only missing packages are installed.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-pthread
  libboost-graph-dev libprotobuf-dev protobuf-compiler
  libspdlog-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev zlib1g-dev
  dataset-fashion-mnist
  libonnx-dev graphviz python3-torch
  clang libclang-rt-dev
  pybind11-dev python3-dev python3-numpy python3-pytest
  python3-jsonschema chromium
  libpng-dev libjpeg62-turbo-dev
  python3-torchvision python3-pil python3-onnx
)
# libonnx-dev: ONNX export and its checker; graphviz: `den export --format svg`; python3-torch: the
# test that loads an exported TorchScript model in Python; clang + libclang-rt-dev: the libFuzzer
# target of the checkpoint loader (DEN_BUILD_FUZZ=ON, tests/fuzz); pybind11-dev, python3-dev, python3-numpy,
# python3-pytest: the Python module (python/) and its tests; python3-jsonschema: the test that validates
# real reports against docs/report.schema.json and docs/compare-report.schema.json; chromium: the
# browser test of `den report`'s HTML page (headless: loads it, screenshots it, no console errors).
# libpng-dev, libjpeg62-turbo-dev: decoding the PNG and JPEG files of image folders (data/image_folder.cpp).
# python3-torchvision, python3-pil, python3-onnx: tests that compare image preprocessing with torchvision's
# transforms, and ONNX import fixtures.

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install_deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
