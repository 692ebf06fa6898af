#!/usr/bin/env python3
"""Writes the TorchScript models that tests/serialization/torchscript_import_test.cpp imports.

Run with Debian's python3-torch (1.13.1, the LibTorch den links):
    /usr/bin/python3 tests/serialization/make_import_fixtures.py tests/serialization/data/import

Every model takes 6 features. For each model den maps it also writes NAME.io.pt, a scripted
module whose buffers x and y are a batch of inputs and the model's own outputs, which the test
compares with den's imported task to 1e-5. Models den refuses are named refused_<why>.pt.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(15)
D = 6


class Chain(nn.Module):
    """A plain module whose forward chains its submodules with functional and tensor relu."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, 5)
        self.fc2 = nn.Linear(5, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.out(x)


class Nested(nn.Module):
    """A Sequential body inside a module, then the head."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(D, 7), nn.ReLU(), nn.Sequential(nn.Linear(7, 5), nn.ReLU()))
        self.head = nn.Linear(5, 4)

    def forward(self, x):
        return self.head(self.body(x))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(D, D)
        self.out = nn.Linear(D, 2)

    def forward(self, x):
        return self.out(torch.relu(self.fc1(x)) + x)


def supported():
    """Models den maps, each with every supported layer type somewhere."""
    plain = nn.Sequential(nn.Linear(D, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    extras = nn.Sequential(nn.Flatten(), nn.Linear(D, 5, bias=False), nn.ReLU(inplace=True), nn.Dropout(0.3),
                           nn.Identity(), nn.Linear(5, 2))
    return {
        "sequential_script": torch.jit.script(plain.eval()),
        "sequential_trace": torch.jit.trace(plain.eval(), torch.rand(2, D)),
        "extras_script": torch.jit.script(extras.eval()),
        "extras_trace": torch.jit.trace(extras.eval(), torch.rand(2, D)),
        "chain_script": torch.jit.script(Chain().eval()),
        "chain_trace": torch.jit.trace(Chain().eval(), torch.rand(2, D)),
        "nested_script": torch.jit.script(Nested().eval()),
        "nested_trace": torch.jit.trace(Nested().eval(), torch.rand(2, D)),
    }


def refused():
    """Models den refuses, named after what it refuses."""
    def seq(*mods):
        return torch.jit.script(nn.Sequential(*mods).eval())
    return {
        "sigmoid": seq(nn.Linear(D, 4), nn.Sigmoid(), nn.Linear(4, 2)),
        "tanh": seq(nn.Linear(D, 4), nn.Tanh(), nn.Linear(4, 2)),
        "batchnorm": seq(nn.Linear(D, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)),
        "conv": torch.jit.trace(nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)).eval(),
                                torch.rand(2, 1, D)),
        "residual": torch.jit.script(Residual().eval()),
        "no_relu_between": seq(nn.Linear(D, 4), nn.Linear(4, 2)),
        "ends_with_relu": seq(nn.Linear(D, 4), nn.ReLU(), nn.Linear(4, 2), nn.ReLU()),
        "one_linear": seq(nn.Linear(D, 2)),
        "relu_first": seq(nn.ReLU(), nn.Linear(D, 4), nn.ReLU(), nn.Linear(4, 2)),
    }


class Tensors(nn.Module):
    def __init__(self, x, y):
        super().__init__()
        self.register_buffer("x", x)
        self.register_buffer("y", y)


def main(out):
    os.makedirs(out, exist_ok=True)
    x = torch.randn(16, D)
    for name, model in supported().items():
        model.save(os.path.join(out, name + ".pt"))
        with torch.no_grad():
            y = model(x)
        torch.jit.script(Tensors(x, y)).save(os.path.join(out, name + ".io.pt"))
    for name, model in refused().items():
        model.save(os.path.join(out, "refused_" + name + ".pt"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "data", "import"))
