#!/usr/bin/env python3
"""Writes torchvision's ResNet-18 and MobileNetV2 (random weights, BatchNorm statistics made
non-trivial, 10 classes, 224x224 RGB), scripted and traced, for the test that den imports them
through a frozen trunk (tests/serialization/torchscript_import_test.cpp, ImportTorchvision). Each
NAME.pt comes with NAME.io.pt, a scripted module whose buffers x and y are three images and the
model's own outputs. Too large to check in (45 MB for ResNet-18): the test runs this script.

    /usr/bin/python3 tests/serialization/make_torchvision_models.py OUT
"""
import os
import sys

import torch
import torch.nn as nn
import torchvision


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_import_fixtures import Tensors  # noqa: E402  (buffers x and y, as the C++ tests read them)


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(18)
    x = torch.rand(3, 3, 224, 224)
    for name, make in (("resnet18", torchvision.models.resnet18), ("mobilenet_v2", torchvision.models.mobilenet_v2)):
        model = make(num_classes=10).eval()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                with torch.no_grad():
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
        with torch.no_grad():
            y = model(x)
        torch.jit.script(model).save(os.path.join(out, name + "_script.pt"))
        torch.jit.trace(model, x[:1]).save(os.path.join(out, name + "_trace.pt"))
        torch.jit.script(Tensors(x, y)).save(os.path.join(out, name + ".io.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
