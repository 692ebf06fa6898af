#!/usr/bin/env python3
"""The PyTorch side of scripts/import_demo.sh (docs/import-and-predict.md).

    fashion_mlp.py train DATA WORK   trains an MLP on Fashion-MNIST classes 0-7 of DATA's training
                                     file, saves WORK/model.pt (TorchScript), prints its accuracy on
                                     the test images of classes 0-7, and writes the folders den reads:
                                     WORK/old (classes 0-7), WORK/class8, WORK/class9 (IDX, training
                                     images only)
    fashion_mlp.py check DATA WORK   compares den predict's WORK/preds.csv (and WORK/preds_task1.csv)
                                     with the test labels and WORK/agnostic.pt's classes; prints the
                                     figures and exits 1 when the exported module disagrees with
                                     den predict on any sample

Needs Debian's python3-torch (and numpy); DATA holds Fashion-MNIST as IDX (.gz) files.
"""
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

OLD_CLASSES = 8
SEED = 15


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_idx(path, array):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape))
        f.write(array.tobytes())


def load(data, half):
    prefix = "train" if half == "train" else "t10k"
    images = read_idx(os.path.join(data, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data, prefix + "-labels-idx1-ubyte.gz"))
    return images, labels.astype(np.int64)


def features(images):
    """As den's IDX reader makes them: bytes / 255, flattened."""
    return torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)


def write_folder(folder, images, labels):
    os.makedirs(folder, exist_ok=True)
    write_idx(os.path.join(folder, "train-images-idx3-ubyte"), images)
    write_idx(os.path.join(folder, "train-labels-idx1-ubyte"), labels)


def train(data, work):
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    images, labels = load(data, "train")
    old = labels < OLD_CLASSES
    x, y = features(images[old]), torch.from_numpy(labels[old])
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                          nn.Linear(128, OLD_CLASSES))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    epochs = int(os.environ.get("DEN_DEMO_EPOCHS", "6"))
    for epoch in range(epochs):
        order = torch.randperm(len(y))
        for start in range(0, len(y), 128):
            batch = order[start:start + 128]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}/{epochs}: last batch loss {loss.item():.4f}", flush=True)
    model.eval()
    torch.jit.script(model).save(os.path.join(work, "model.pt"))

    test_images, test_labels = load(data, "test")
    test_old = test_labels < OLD_CLASSES
    with torch.no_grad():
        predicted = model(features(test_images[test_old])).argmax(1).numpy()
    accuracy = float((predicted == test_labels[test_old]).mean())
    print(f"PyTorch MLP, test accuracy on classes 0-{OLD_CLASSES - 1}: {100 * accuracy:.2f}%")
    with open(os.path.join(work, "python.json"), "w") as f:
        json.dump({"old_accuracy": accuracy}, f)

    write_folder(os.path.join(work, "old"), images[old], labels[old])
    for c in (8, 9):
        write_folder(os.path.join(work, f"class{c}"), images[labels == c], labels[labels == c])


def read_predictions(path):
    rows = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64, usecols=(1,))
    return rows.astype(np.int64)


def check(data, work):
    test_images, test_labels = load(data, "test")
    agnostic = read_predictions(os.path.join(work, "preds.csv"))
    task1 = read_predictions(os.path.join(work, "preds_task1.csv"))
    old = test_labels < OLD_CLASSES
    python_old = json.load(open(os.path.join(work, "python.json")))["old_accuracy"]

    def pct(mask, predicted):
        return 100 * float((predicted[mask] == test_labels[mask]).mean())

    figures = {
        "python_old_classes": 100 * python_old,
        "den_old_classes_task_aware": pct(old, task1),
        "den_old_classes_agnostic": pct(old, agnostic),
        "den_class8_agnostic": pct(test_labels == 8, agnostic),
        "den_class9_agnostic": pct(test_labels == 9, agnostic),
        "den_new_classes_agnostic": pct(~old, agnostic),
        "den_all_classes_agnostic": pct(np.ones_like(old), agnostic),
    }
    exported = torch.jit.load(os.path.join(work, "agnostic.pt"))
    with torch.no_grad():
        from_export = exported.predict(features(test_images)).numpy()
    figures["export_disagreements"] = int((from_export != agnostic).sum())
    for name, value in figures.items():
        print(f"{name:30s} {value:.2f}" if isinstance(value, float) else f"{name:30s} {value}")
    with open(os.path.join(work, "figures.json"), "w") as f:
        json.dump(figures, f, indent=2)
    gap = abs(figures["den_old_classes_task_aware"] - figures["python_old_classes"])
    print(f"old classes: den (task 1's head) vs PyTorch: {gap:.2f} points apart (target: within 0.5)")
    if figures["export_disagreements"] != 0:
        print("the exported task-agnostic module disagrees with den predict", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("train", "check"):
        sys.exit(__doc__)
    command, data_dir, work_dir = sys.argv[1:]
    os.makedirs(work_dir, exist_ok=True)
    sys.exit(train(data_dir, work_dir) if command == "train" else check(data_dir, work_dir))
