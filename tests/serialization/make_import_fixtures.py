#!/usr/bin/env python3
"""Writes the TorchScript models that tests/serialization/torchscript_import_test.cpp imports.

Run with Debian's python3-torch (1.13.1, the LibTorch den links):
    /usr/bin/python3 tests/serialization/make_import_fixtures.py tests/serialization/data/import

Every MLP takes 6 features, every conv model (conv_*) 1x10x10 images. For each model den maps it
also writes NAME.io.pt, a scripted module whose buffers x and y are a batch of inputs and the
model's own outputs, which the test compares with den's imported task to 1e-5 (a conv model's x are
images, which den reads flattened). Models den refuses are named refused_<why>.pt.
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


class ConvChain(nn.Module):
    """Conv layers chained by hand: a strided conv, max pooling before its ReLU, torch.flatten."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(3 * 2 * 2, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        x = F.relu(self.pool(self.conv(x)))
        x = torch.flatten(x, 1)
        return self.out(F.relu(self.fc(x)))


class ConvNormChain(nn.Module):
    """BatchNorm folded into the Conv2d before it, and global average pooling written functionally."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 5, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(5)
        self.fc = nn.Linear(5, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.out(F.relu(self.fc(x)))


def with_statistics(model):
    """Gives every BatchNorm running statistics and an affine map far from the identity, as after
    training, so that a fold that ignored any of them would show."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                if m.affine:
                    m.weight.uniform_(-2, 2)
                    m.bias.uniform_(-1, 1)
    return model.eval()


def conv_supported():
    """Conv models den maps: 10x10 -> conv p1 (10x10) -> max pool (5x5) -> conv 2x2 (4x4) -> average
    pool (2x2) -> flatten (each channel owns 4 inputs of the Linear) -> Linear, ReLU, Dropout -> head."""
    torch.manual_seed(25)
    lenet = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 2), nn.ReLU(),
                          nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 2 * 2, 8), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(8, 3))
    return {
        "conv_sequential_script": torch.jit.script(lenet.eval()),
        "conv_sequential_trace": torch.jit.trace(lenet.eval(), torch.rand(2, 1, 10, 10)),
        "conv_chain_script": torch.jit.script(ConvChain().eval()),
        "conv_chain_trace": torch.jit.trace(ConvChain().eval(), torch.rand(2, 1, 10, 10)),
        **conv_normalized(),
    }


def conv_normalized():
    """BatchNorm2d after each Conv2d and BatchNorm1d after a Linear (folded into them, eval
    statistics), global average pooling (AdaptiveAvgPool2d(1)), Dropout2d: 10x10 -> conv p1, BN,
    ReLU, max pool (5x5) -> conv 3x3, BN (affine=False), ReLU (3x3) -> GAP (1x1) -> Linear, BN,
    ReLU -> head."""
    torch.manual_seed(35)
    resnet_like = with_statistics(nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(0.1),
        nn.Conv2d(4, 6, 3), nn.BatchNorm2d(6, affine=False), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)))
    chain = with_statistics(ConvNormChain())
    return {
        "conv_batchnorm_script": torch.jit.script(resnet_like),
        "conv_batchnorm_trace": torch.jit.trace(resnet_like, torch.rand(2, 1, 10, 10)),
        "conv_gap_chain_script": torch.jit.script(chain),
        "conv_gap_chain_trace": torch.jit.trace(chain, torch.rand(2, 1, 10, 10)),
    }


def conv_refused():
    def seq(*mods):
        return torch.jit.script(nn.Sequential(*mods).eval())
    return {
        "depthwise": seq(nn.Conv2d(2, 2, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 8 * 8, 2)),
        "dilated": seq(nn.Conv2d(1, 2, 3, dilation=2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 2)),
        "overlapping_pool": seq(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(3, stride=2), nn.Flatten(),
                                nn.Linear(2 * 3 * 3, 2)),
        "pool_to_2x2": seq(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8, 2)),
        "batchnorm_batch_statistics": seq(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False), nn.ReLU(),
                                          nn.Flatten(), nn.Linear(2 * 8 * 8, 2)),
        "conv_after_linear": seq(nn.Linear(6, 4), nn.ReLU(), nn.Unflatten(1, (1, 2, 2)), nn.Conv2d(1, 2, 1), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(8, 2)),
    }


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
        "batchnorm_after_relu": seq(nn.Linear(D, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 2)),
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
    images = conv_supported()
    x = torch.randn(16, 1, 10, 10)
    for name, model in images.items():
        model.save(os.path.join(out, name + ".pt"))
        with torch.no_grad():
            y = model(x)
        torch.jit.script(Tensors(x, y)).save(os.path.join(out, name + ".io.pt"))
    for name, model in conv_refused().items():
        model.save(os.path.join(out, "refused_" + name + ".pt"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "data", "import"))
