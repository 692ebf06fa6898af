#!/usr/bin/env python3
"""The PyTorch side of scripts/image_request.sh (docs/image-request.md): the request "my image model
knows its classes; teach it two more from a folder of photos and keep the rest", on Fashion-MNIST.

    fashion_cnn.py prepare DATA WORK     writes Fashion-MNIST (IDX in DATA) as PNG class folders:
                                         WORK/train/<0..7>/ (every training image of classes 0-7),
                                         WORK/memory<M>/<0..7>/ (M = 5, 20 images per old class),
                                         WORK/new/{bag,ankle_boot}/ (NEW_PER_CLASS images each),
                                         WORK/test/<0..7|bag|ankle_boot>/ (the whole test set)
    fashion_cnn.py train WORK MODEL      trains MODEL (plain: a conv net den maps whole; residual: a
                                         small residual CNN with BatchNorm, whose residual blocks den
                                         runs as a frozen trunk) on WORK/train (classes 0-7), saves
                                         WORK/MODEL.pt (TorchScript; residual also WORK/residual.onnx)
                                         and its test accuracy on classes 0-7; then the two references
                                         on all ten classes: retraining from scratch on the old
                                         classes' images and the new folders (the upper bound), and
                                         fine-tuning the 8-class model on the new folders only
    fashion_cnn.py check WORK MODEL RUN  reads den predict's RUN/preds.csv (task-agnostic) and
                                         RUN/preds_task1.csv (task 1's head) and prints the figures

Needs Debian's python3-torch, python3-torchvision (ImageFolder and transforms only; no weights are
downloaded) and python3-pil.
"""
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from PIL import Image
from torchvision import datasets, transforms

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "import_demo"))
from fashion_mlp import load  # noqa: E402  (Fashion-MNIST's IDX files as numpy arrays)

OLD_CLASSES = 8
NEW_NAMES = {8: "bag", 9: "ankle_boot"}  # the "two celebrities": folders named, not numbered
NEW_PER_CLASS = int(os.environ.get("DEN_REQUEST_NEW_PER_CLASS", "300"))
MEMORY_SIZES = (5, 20)
EPOCHS = int(os.environ.get("DEN_REQUEST_EPOCHS", "4"))
SEED = 15


def folder_name(label):
    return NEW_NAMES.get(int(label), str(int(label)))


def write_pngs(root, images, labels, per_class=None, seed=SEED):
    """PNG files root/<class folder>/<index>.png; `per_class` draws that many of each class (seeded)."""
    rng = np.random.default_rng(seed)
    for c in sorted(set(labels.tolist())):
        index = np.flatnonzero(labels == c)
        if per_class is not None:
            index = np.sort(rng.choice(index, size=per_class, replace=False))
        folder = os.path.join(root, folder_name(c))
        os.makedirs(folder, exist_ok=True)
        for i in index:
            Image.fromarray(images[i]).save(os.path.join(folder, f"{i:05d}.png"))


def prepare(data, work):
    images, labels = load(data, "train")
    old = labels < OLD_CLASSES
    write_pngs(os.path.join(work, "train"), images[old], labels[old])
    for m in MEMORY_SIZES:
        write_pngs(os.path.join(work, f"memory{m}"), images[old], labels[old], per_class=m, seed=SEED + m)
    new = ~old
    write_pngs(os.path.join(work, "new"), images[new], labels[new], per_class=NEW_PER_CLASS)
    test_images, test_labels = load(data, "test")
    write_pngs(os.path.join(work, "test"), test_images, test_labels)
    print(f"wrote {old.sum()} training PNGs of classes 0-7, memories of {MEMORY_SIZES} per class, "
          f"{NEW_PER_CLASS} per new class, {len(test_labels)} test PNGs")


class PlainNet(nn.Sequential):
    """The plain conv net: den maps every layer (conv5x5:32,maxpool2,conv5x5:64,maxpool2,fc:256)."""

    def __init__(self, classes):
        super().__init__(nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 4 * 4, 256), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(256, classes))


class Block(nn.Module):
    """A basic residual block with BatchNorm, as ResNet's."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(y)))


class ResidualNet(nn.Module):
    """A small residual CNN with BatchNorm. den maps the stem, the downsampling conv and the tail
    (conv3x3p1:32,maxpool2,fc:128 and the head, BatchNorms folded); the residual blocks and what comes
    before them run as the frozen trunk."""

    def __init__(self, classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.block1 = Block(16)
        self.down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.block2 = Block(32)
        self.tail = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, classes)

    def forward(self, x):
        return self.head(self.tail(self.block2(self.down(self.block1(self.stem(x))))))


MODELS = {"plain": PlainNet, "residual": ResidualNet}


def widened(model, make, classes):
    """`model` as a net of `classes` outputs: every weight kept, two more head outputs."""
    wide = make(classes)
    state = model.state_dict()
    head = "head" if make is ResidualNet else "10"
    wide_state = wide.state_dict()
    for key, value in state.items():
        if key.startswith(head + "."):
            wide_state[key][:value.shape[0]] = value
        else:
            wide_state[key] = value
    wide.load_state_dict(wide_state)
    return wide


def folder_tensors(root, class_ids):
    """Every PNG of root/<folder>/ as ToTensor() images and labels (class_ids maps folder names)."""
    dataset = datasets.ImageFolder(root, transform=transforms.Compose([transforms.Grayscale(), transforms.ToTensor()]))
    x = torch.stack([dataset[i][0] for i in range(len(dataset))])
    y = torch.tensor([class_ids[dataset.classes[label]] for _, label in dataset.samples])
    return x, y


def class_ids():
    ids = {str(c): c for c in range(OLD_CLASSES)}
    ids.update({name: c for c, name in NEW_NAMES.items()})
    return ids


def fit(model, x, y, epochs, lr=1e-3, batch=128):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(y))
        for start in range(0, len(y), batch):
            idx = order[start:start + batch]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            optimizer.step()
    model.eval()
    return model


def accuracy(model, x, y):
    with torch.no_grad():
        predicted = torch.cat([model(x[s:s + 1000]).argmax(1) for s in range(0, len(y), 1000)])
    return float((predicted == y).double().mean())


def train(work, name):
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    make = MODELS[name]
    ids = class_ids()
    x, y = folder_tensors(os.path.join(work, "train"), ids)
    test_x, test_y = folder_tensors(os.path.join(work, "test"), ids)
    old_test = test_y < OLD_CLASSES
    figures = {}

    start = time.time()
    model = fit(make(OLD_CLASSES), x, y, EPOCHS)
    figures["python_old_accuracy"] = accuracy(model, test_x[old_test], test_y[old_test])
    figures["python_train_seconds"] = time.time() - start
    torch.jit.script(model).save(os.path.join(work, name + ".pt"))
    if name == "residual":
        torch.onnx.export(model, x[:1], os.path.join(work, name + ".onnx"), opset_version=13,
                          input_names=["images"], output_names=["logits"], dynamic_axes={"images": {0: "n"}})
    print(f"{name} net on classes 0-7: test accuracy {100 * figures['python_old_accuracy']:.2f}% "
          f"({figures['python_train_seconds']:.0f} s)", flush=True)

    # Fine-tuning: the 8-class model with two more outputs, trained on the new folders only.
    new_x, new_y = folder_tensors(os.path.join(work, "new"), ids)
    tuned = widened(model, make, OLD_CLASSES + 2)
    start = time.time()
    fit(tuned, new_x, new_y, EPOCHS)
    figures["finetune_all_accuracy"] = accuracy(tuned, test_x, test_y)
    figures["finetune_old_accuracy"] = accuracy(tuned, test_x[old_test], test_y[old_test])
    figures["finetune_seconds"] = time.time() - start

    # The upper bound: the same net retrained from scratch on every training image of all ten
    # classes (which the request does not have: it needs the old data).
    images = torch.cat([x, new_x])  # old classes in full, new ones as the request has them
    labels = torch.cat([y, new_y])
    start = time.time()
    retrained = fit(make(OLD_CLASSES + 2), images, labels, EPOCHS)
    figures["retrain_all_accuracy"] = accuracy(retrained, test_x, test_y)
    figures["retrain_seconds"] = time.time() - start
    with open(os.path.join(work, f"python-{name}.json"), "w") as f:
        json.dump(figures, f, indent=2)
    for name, value in figures.items():
        print(f"{name:28s} {value:.4f}")
    return 0


def read_predictions(path):
    """file and class columns of den predict's CSV (class names for the named folders)."""
    rows = {}
    with open(path) as f:
        next(f)
        for line in f:
            fields = line.rstrip("\n").split(",")
            rows[fields[0]] = fields[1]
    return rows


def check(work, name, run):
    figures = json.load(open(os.path.join(work, f"python-{name}.json")))
    agnostic = read_predictions(os.path.join(run, "preds.csv"))
    task1 = read_predictions(os.path.join(run, "preds_task1.csv"))

    def pct(rows, folders):
        hits = [rows[f] == f.split("/")[0] for f in rows if f.split("/")[0] in folders]
        return 100 * float(np.mean(hits))

    old = {str(c) for c in range(OLD_CLASSES)}
    new = set(NEW_NAMES.values())
    result = {
        "python_old_classes": 100 * figures["python_old_accuracy"],
        "den_old_classes_task1_head": pct(task1, old),
        "den_old_classes_agnostic": pct(agnostic, old),
        "den_new_classes_agnostic": pct(agnostic, new),
        "den_all_classes_agnostic": pct(agnostic, old | new),
        "retrain_all_classes": 100 * figures["retrain_all_accuracy"],
        "finetune_all_classes": 100 * figures["finetune_all_accuracy"],
        "finetune_old_classes": 100 * figures["finetune_old_accuracy"],
    }
    for name, value in result.items():
        print(f"{name:30s} {value:.2f}")
    with open(os.path.join(run, "figures.json"), "w") as f:
        json.dump(result, f, indent=2)
    gap = abs(result["den_old_classes_task1_head"] - result["python_old_classes"])
    print(f"old classes: den (task 1's head) vs PyTorch: {gap:.2f} points apart (target: within 0.5)")
    return 0 if gap <= 0.5 else 1


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("prepare", "train", "check"):
        sys.exit(__doc__)
    command = sys.argv[1]
    os.makedirs(sys.argv[2] if command != "prepare" else sys.argv[3], exist_ok=True)
    if command == "prepare":
        sys.exit(prepare(sys.argv[2], sys.argv[3]))
    if command == "train":
        sys.exit(train(sys.argv[2], sys.argv[3]))
    sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4]))
