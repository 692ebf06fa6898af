#!/usr/bin/env python3
"""Plain PyTorch reference for den's first-task phase, for a side-by-side speed ratio.

Same work as `den run --tasks 1 --max-iter N [--layers L]`: by default a 784-312-128-10 MLP; with
--layers, the network that den's --layers text describes (conv<K>x<K>[s<S>][p<P>]:<filters>,
maxpool<N>, avgpool<N>, fc:<units>; docs/configuration.md), each conv layer followed by a ReLU and its
pooling, on 1x28x28 images. Adam (lr 1e-3, staircase decay x0.95 per epoch), batch 256, softmax
cross-entropy + l2*||W||^2, an L1 soft-threshold of every parameter by mu after each step, and the
validation loss on 5000 samples every 100 steps. Data: Fashion-MNIST's first 54000 training images
scaled to [0, 1]. Prints the seconds of the training loop (data loading excluded, as den's phase time
excludes it) and the milliseconds per step.
"""
import argparse
import gzip
import re
import struct
import time

import numpy as np
import torch


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def build_model(layers, classes=10):
    """torch.nn.Sequential for den's --layers text on 1x28x28 inputs (flat 784 for an all-fc net)."""
    modules, channels, height, width, flat = [], 1, 28, 28, None
    for token in layers.split(","):
        token = token.strip()
        conv = re.fullmatch(r"conv(\d+)x(\d+)(?:s(\d+))?(?:p(\d+))?:(\d+)", token)
        pool = re.fullmatch(r"(max|avg)pool(\d+)", token)
        if conv:
            kh, kw, stride, pad, filters = (int(g) if g else d for g, d in zip(conv.groups(), (0, 0, 1, 0, 0)))
            if not modules:
                modules.append(torch.nn.Unflatten(1, (1, 28, 28)))
            modules += [torch.nn.Conv2d(channels, filters, (kh, kw), stride, pad), torch.nn.ReLU()]
            channels, height, width = filters, (height + 2 * pad - kh) // stride + 1, (width + 2 * pad - kw) // stride + 1
        elif pool:
            size = int(pool.group(2))
            modules.append(torch.nn.MaxPool2d(size) if pool.group(1) == "max" else torch.nn.AvgPool2d(size))
            height, width = height // size, width // size
        else:
            units = int(token.removeprefix("fc:"))
            if flat is None:
                flat = channels * height * width if modules else 784
                if modules:
                    modules.append(torch.nn.Flatten())
            modules += [torch.nn.Linear(flat, units), torch.nn.ReLU()]
            flat = units
    if flat is None:
        modules.append(torch.nn.Flatten())
        flat = channels * height * width
    modules.append(torch.nn.Linear(flat, classes))
    return torch.nn.Sequential(*modules)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--iters", type=int, default=4300)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--layers", default="312,128", help="den's --layers text")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    images = read_idx(f"{args.data}/train-images-idx3-ubyte.gz").reshape(-1, 784)
    labels = read_idx(f"{args.data}/train-labels-idx1-ubyte.gz").astype(np.int64)
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    y = torch.from_numpy(labels)
    train_x, train_y = x[:54000], y[:54000]
    val_x, val_y = x[54000:59000], y[54000:59000]

    model = build_model(args.layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    mu, l2, batch = 1e-5, 1e-4, 256
    steps_per_epoch = (train_x.shape[0] + batch - 1) // batch
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=steps_per_epoch, gamma=0.95)
    params = list(model.parameters())

    start = time.perf_counter()
    order = None
    for it in range(args.iters):
        pos = it % steps_per_epoch
        if pos == 0:
            order = torch.randperm(train_x.shape[0])
        idx = order[pos * batch : (pos + 1) * batch]
        loss = torch.nn.functional.cross_entropy(model(train_x[idx]), train_y[idx])
        loss = loss + l2 * sum((p * p).sum() for p in params)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            for p in params:
                p.copy_(torch.sign(p) * torch.clamp(p.abs() - mu, min=0.0))
            if (it + 1) % 100 == 0:
                val_loss = torch.nn.functional.cross_entropy(model(val_x), val_y).item()
    seconds = time.perf_counter() - start
    print(f"reference first task ({args.layers}): {args.iters} iterations in {seconds:.3f} s, "
          f"{1000 * seconds / args.iters:.2f} ms per step, last val loss {val_loss:.4f}")


if __name__ == "__main__":
    main()
