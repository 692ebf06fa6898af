#!/usr/bin/env python3
"""Writes the ONNX models that tests/serialization/onnx_import_test.cpp translates (generated files: do
not edit them by hand, run this script again).

Run with Debian's python3-torch (1.13.1), python3-torchvision and python3-onnx (1.12), no network:
    /usr/bin/python3 tests/serialization/make_onnx_fixtures.py tests/serialization/data/onnx tests/fuzz/corpus-onnx

For each model den translates it writes NAME.onnx and NAME.io.pt, a scripted module whose buffers x and
y are a batch of inputs and the reference outputs (PyTorch's own forward for the torch.onnx.export
models; for the hand-built Keras-layout model, the same network written with torch.nn.functional and the
same weights), which the test compares with the translated module to 1e-5. Models den refuses are named
refused_<why>.onnx (plus two byte files that are no ONNX model: truncated.onnx and random.onnx). The
second argument, when given, receives copies of the small valid models as the fuzz seed corpus.
"""
import io
import os
import shutil
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

torch.manual_seed(31)


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_import_fixtures import Tensors  # noqa: E402  (buffers x and y, as the C++ tests read them)


def with_statistics(model):
    """Running statistics and affine maps far from the identity, as after training."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(-2, 2)
                m.bias.uniform_(-1, 1)
    return model.eval()


class Residual(nn.Module):
    """conv, BN, ReLU, conv, BN, + skip, ReLU, BN on the sum (not after a conv, so never folded), global
    average pooling, Linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(8)
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.post = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        h = F.relu(self.bn0(self.stem(x)))
        r = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(h)))))
        h = self.post(F.relu(h + r))
        return self.fc(torch.flatten(self.pool(h), 1))


class Pools(nn.Module):
    """Average pooling with ceil_mode and count_include_pad both ways, a depthwise (grouped) conv, ReLU6
    (Clip), Hardswish, a dilated strided conv, max pooling with padding, then a Linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.avg_exclude = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.depthwise = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.relu6 = nn.ReLU6()
        self.avg_include = nn.AvgPool2d(2, ceil_mode=True, count_include_pad=True)
        self.grouped = nn.Conv2d(6, 4, 3, stride=2, padding=2, dilation=2, groups=2)
        self.hardswish = nn.Hardswish()
        self.max = nn.MaxPool2d(3, stride=1, padding=1)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):
        h = self.avg_exclude(self.conv(x))  # 13x13 -> 7x7
        h = self.avg_include(self.relu6(self.depthwise(h)))  # 7x7 -> 4x4
        h = self.max(self.hardswish(self.grouped(h)))  # 4x4 -> 2x2
        return self.fc(torch.flatten(h, 1))


def torch_models():
    """name -> (model in eval mode, input batch, opset)."""
    plain = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(6 * 4 * 4, 10)).eval()
    softmax = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2), nn.Sigmoid(), nn.Flatten(), nn.Linear(3 * 5 * 5, 6),
                            nn.Tanh(), nn.Linear(6, 4), nn.LeakyReLU(0.1), nn.Linear(4, 3), nn.Softmax(dim=1)).eval()
    pools = Pools().eval()
    return {
        "plain_conv": (plain, torch.randn(5, 1, 12, 12), 13),
        "residual_bn": (with_statistics(Residual()), torch.randn(5, 3, 10, 10), 13),
        "pools_depthwise": (pools, torch.randn(5, 3, 13, 13), 13),
        "pools_depthwise_opset10": (pools, torch.randn(5, 3, 13, 13), 10),
        "pools_depthwise_opset14": (pools, torch.randn(5, 3, 13, 13), 14),
        "softmax": (softmax, torch.randn(5, 1, 11, 11), 13),
    }


def export(model, x, opset):
    f = io.BytesIO()
    # PRESERVE (the model is in eval mode) keeps BatchNormalization nodes instead of folding them into the
    # Conv before them, so that the translator's BatchNormalization is what the fixture tests.
    torch.onnx.export(model, x, f, opset_version=opset, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE)
    proto = onnx.load_from_string(f.getvalue())
    onnx.checker.check_model(proto)
    return proto


def keras_layout():
    """A Keras CNN as tf2onnx writes it: NHWC input, a Transpose to NCHW, a stride-2 conv with SAME
    padding written as asymmetric pads, Clip(0, 6), a 1x1 conv, Relu, GlobalAveragePool, Reshape to
    [N, C], MatMul and Add (Dense), Softmax. Returns the model and its reference computed in PyTorch."""
    rng = np.random.default_rng(7)
    c1, c2, k = 8, 6, 4
    w1 = rng.standard_normal((c1, 3, 3, 3)).astype(np.float32) * 0.5
    b1 = rng.standard_normal(c1).astype(np.float32) * 0.1
    w2 = rng.standard_normal((c2, c1, 1, 1)).astype(np.float32) * 0.5
    b2 = rng.standard_normal(c2).astype(np.float32) * 0.1
    dense = rng.standard_normal((c2, k)).astype(np.float32)
    bias = rng.standard_normal(k).astype(np.float32)
    shape = np.array([-1, c2], dtype=np.int64)
    inits = [numpy_helper.from_array(a, n) for a, n in [
        (w1, "sequential/conv2d/Conv2D/ReadVariableOp:0"), (b1, "sequential/conv2d/BiasAdd/ReadVariableOp:0"),
        (w2, "sequential/conv2d_1/Conv2D/ReadVariableOp:0"), (b2, "sequential/conv2d_1/BiasAdd/ReadVariableOp:0"),
        (dense, "sequential/dense/MatMul/ReadVariableOp:0"), (bias, "sequential/dense/BiasAdd/ReadVariableOp:0"),
        (shape, "const_fold_opt__12")]]
    inits.append(numpy_helper.from_array(np.array(0, dtype=np.float32), "clip_min__5"))
    inits.append(numpy_helper.from_array(np.array(6, dtype=np.float32), "clip_max__6"))
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["input_1__t"], name="sequential/conv2d/Conv2D__6", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["input_1__t", inits[0].name, inits[1].name], ["conv1:0"], name="sequential/conv2d/Conv2D",
                         kernel_shape=[3, 3], strides=[2, 2], dilations=[1, 1], group=1, pads=[0, 0, 1, 1]),
        helper.make_node("Clip", ["conv1:0", "clip_min__5", "clip_max__6"], ["relu6:0"], name="sequential/re_lu/Relu6"),
        helper.make_node("Conv", ["relu6:0", inits[2].name, inits[3].name], ["conv2:0"], name="sequential/conv2d_1/Conv2D",
                         kernel_shape=[1, 1], strides=[1, 1], auto_pad="VALID"),
        helper.make_node("Relu", ["conv2:0"], ["relu:0"], name="sequential/conv2d_1/Relu"),
        helper.make_node("GlobalAveragePool", ["relu:0"], ["gap:0"], name="sequential/global_average_pooling2d/Mean"),
        helper.make_node("Reshape", ["gap:0", "const_fold_opt__12"], ["flat:0"], name="sequential/flatten/Reshape"),
        helper.make_node("MatMul", ["flat:0", inits[4].name], ["dense:0"], name="sequential/dense/MatMul"),
        helper.make_node("Add", ["dense:0", inits[5].name], ["logits:0"], name="sequential/dense/BiasAdd"),
        helper.make_node("Softmax", ["logits:0"], ["dense"], name="sequential/dense/Softmax", axis=-1),
    ]
    graph = helper.make_graph(nodes, "sequential", [helper.make_tensor_value_info("input_1", TensorProto.FLOAT,
                                                                                  ["unk__18", 12, 12, 3])],
                              [helper.make_tensor_value_info("dense", TensorProto.FLOAT, ["unk__19", k])], inits)
    model = helper.make_model(graph, producer_name="tf2onnx", opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)

    def reference(x):
        h = x.permute(0, 3, 1, 2)
        h = F.conv2d(F.pad(h, [0, 1, 0, 1]), torch.from_numpy(w1), torch.from_numpy(b1), stride=2)
        h = torch.clamp(h, 0, 6)
        h = F.relu(F.conv2d(h, torch.from_numpy(w2), torch.from_numpy(b2)))
        h = h.mean(dim=(2, 3)).reshape(-1, c2)
        return torch.softmax(h @ torch.from_numpy(dense) + torch.from_numpy(bias), -1)

    return model, reference


def ops_mix():
    """Hand-built (opset 13): the operators and attributes the exported models do not use, with their
    reference in PyTorch. [N,3,7,7] -> Pad (1 before H, 1 after W, value 0.5) -> MaxPool 3 s2 SAME_UPPER
    (padding only at the end) -> AveragePool 2 s1 SAME_UPPER, count_include_pad 0 -> Conv 2x2 SAME_LOWER
    (padding only at the beginning) -> HardSigmoid(0.3, 0.4) -> GlobalMaxPool -> Squeeze [2, 3] ->
    Unsqueeze [1] -> Concat with itself times a constant -> Transpose -> Reshape [0, -1] -> Gemm (alpha,
    beta) -> Sub, Div constants -> Identity, Dropout -> MatMul -> LogSoftmax."""
    rng = np.random.default_rng(11)
    w = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    scale = np.array(1.5, np.float32)
    gemm_b = rng.standard_normal((8, 3)).astype(np.float32)
    gemm_c = rng.standard_normal(3).astype(np.float32)
    sub = rng.standard_normal((1, 3)).astype(np.float32)
    div = rng.uniform(1, 2, 3).astype(np.float32)
    mm = rng.standard_normal((3, 5)).astype(np.float32)
    arrays = {"w": w, "scale": scale, "gemm_b": gemm_b, "gemm_c": gemm_c, "sub": sub, "div": div, "mm": mm,
              "pads": np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64), "axes_sq": np.array([2, 3], np.int64),
              "axes_un": np.array([1], np.int64), "shape": np.array([0, -1], np.int64)}
    inits = [numpy_helper.from_array(a, n) for n, a in arrays.items()]
    inits.append(numpy_helper.from_array(np.array(0.5, np.float32), "pad_value"))
    n = helper.make_node
    nodes = [
        n("Pad", ["x", "pads", "pad_value"], ["padded"], name="pad", mode="constant"),
        n("MaxPool", ["padded"], ["maxed"], name="max", kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"),
        n("AveragePool", ["maxed"], ["avg"], name="avg", kernel_shape=[2, 2], auto_pad="SAME_UPPER"),
        n("Conv", ["avg", "w"], ["conv"], name="conv", kernel_shape=[2, 2], auto_pad="SAME_LOWER"),
        n("HardSigmoid", ["conv"], ["hs"], name="hardsigmoid", alpha=0.3, beta=0.4),
        n("GlobalMaxPool", ["hs"], ["gmp"], name="gmp"),
        n("Squeeze", ["gmp", "axes_sq"], ["sq"], name="squeeze"),
        n("Unsqueeze", ["sq", "axes_un"], ["un"], name="unsqueeze"),
        n("Mul", ["un", "scale"], ["scaled"], name="mul"),
        n("Concat", ["un", "scaled"], ["cat"], name="concat", axis=1),
        n("Transpose", ["cat"], ["tr"], name="transpose", perm=[0, 2, 1]),
        n("Reshape", ["tr", "shape"], ["flat"], name="reshape"),
        n("Gemm", ["flat", "gemm_b", "gemm_c"], ["gemm"], name="gemm", alpha=0.5, beta=2.0),
        n("Sub", ["gemm", "sub"], ["subbed"], name="sub"),
        n("Div", ["subbed", "div"], ["divided"], name="div"),
        n("Identity", ["divided"], ["same"], name="identity"),
        n("Dropout", ["same"], ["dropped"], name="dropout"),
        n("MatMul", ["dropped", "mm"], ["mm_out"], name="matmul"),
        n("LogSoftmax", ["mm_out"], ["y"], name="logsoftmax", axis=1),
    ]
    graph = helper.make_graph(nodes, "ops_mix", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 7, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    t = {k: torch.from_numpy(v) for k, v in arrays.items()}

    def reference(x):
        h = F.pad(x, [0, 1, 1, 0], value=0.5)  # H: 1 before; W: 1 after
        h = F.max_pool2d(F.pad(h, [0, 1, 0, 1], value=float("-inf")), 3, 2)  # 8x8: SAME_UPPER pads 0 before, 1 after
        # The mean of each 2x2 window over the elements that are not padding (NaN here).
        h = torch.nanmean(F.pad(h, [0, 1, 0, 1], value=float("nan")).unfold(2, 2, 1).unfold(3, 2, 1).flatten(-2), -1)
        h = F.conv2d(F.pad(h, [1, 0, 1, 0]), t["w"])
        h = torch.clamp(h * 0.3 + 0.4, 0, 1)
        h = h.amax(dim=(2, 3)).unsqueeze(1)
        h = torch.cat([h, h * 1.5], 1).transpose(1, 2).reshape(h.shape[0], -1)
        h = 0.5 * h @ t["gemm_b"] + 2.0 * t["gemm_c"]
        h = (h - t["sub"]) / t["div"]
        return torch.log_softmax(h @ t["mm"], 1)

    return model, reference


def opset11_mix():
    """Hand-built (opset 11): Squeeze and Unsqueeze axes as attributes, Softmax over the dims from axis on
    (the input coerced to 2-D), Flatten at axis 2. [N,2,3,4] -> Unsqueeze axes [0] -> Squeeze axes [0] ->
    Softmax axis 1 -> Flatten axis 2 -> Tanh."""
    n = helper.make_node
    nodes = [n("Unsqueeze", ["x"], ["u"], name="unsqueeze", axes=[0]),
             n("Squeeze", ["u"], ["s"], name="squeeze", axes=[0]),
             n("Softmax", ["s"], ["sm"], name="softmax", axis=1),
             n("Flatten", ["sm"], ["f"], name="flatten", axis=2),
             n("Tanh", ["f"], ["y"], name="tanh")]
    graph = helper.make_graph(nodes, "opset11", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["M", 12])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    onnx.checker.check_model(model)

    def reference(x):
        h = torch.softmax(x.flatten(1), 1).reshape(x.shape)
        return torch.tanh(h.reshape(x.shape[0] * 2, 3 * 4))  # Flatten at 2: [N*2, 12]

    return model, reference


def small_model(nodes, inputs, outputs, inits=(), opset=13):
    graph = helper.make_graph(nodes, "refused", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    return model


def refused():
    """name -> serialized bytes of a model den refuses, named after why."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 12, 12])
    out = {}
    out["unsupported_op"] = small_model([helper.make_node("Relu", ["x"], ["r"], name="relu_1"),
                                         helper.make_node("DepthToSpace", ["r"], ["y"], name="conv_3", blocksize=2)],
                                        [x], [y]).SerializeToString()
    # An initializer whose bytes live in another file.
    w = numpy_helper.from_array(np.ones((4, 4, 1, 1), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="weights.bin")
    w.external_data.add(key="offset", value="0")
    w.external_data.add(key="length", value="64")
    out["external_data"] = small_model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv_0")],
                                       [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 6, 6])],
                                       [w]).SerializeToString()
    x2 = helper.make_tensor_value_info("x2", TensorProto.FLOAT, ["N", 4, 6, 6])
    out["two_inputs"] = small_model([helper.make_node("Add", ["x", "x2"], ["y"], name="add_0")], [x, x2],
                                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 6, 6])]
                                    ).SerializeToString()
    # 2^40 floats claimed, 4 bytes held.
    huge = TensorProto(name="huge", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20], raw_data=b"\0\0\0\0")
    out["huge_initializer"] = small_model([helper.make_node("MatMul", ["x", "huge"], ["y"], name="matmul_0")], [x],
                                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                                          [huge]).SerializeToString()
    return out


def main(out, corpus):
    os.makedirs(out, exist_ok=True)
    valid = []
    for name, (model, x, opset) in torch_models().items():
        proto = export(model, x, opset)
        onnx.save(proto, os.path.join(out, name + ".onnx"))
        with torch.no_grad():
            y = model(x)
        torch.jit.script(Tensors(x, y)).save(os.path.join(out, name + ".io.pt"))
        valid.append(name + ".onnx")
    for name, make, shape in [("keras_layout", keras_layout, (5, 12, 12, 3)), ("ops_mix", ops_mix, (5, 3, 7, 7)),
                              ("opset11_mix", opset11_mix, (5, 2, 3, 4))]:
        model, reference = make()
        onnx.save(model, os.path.join(out, name + ".onnx"))
        x = torch.randn(*shape)
        with torch.no_grad():
            torch.jit.script(Tensors(x, reference(x))).save(os.path.join(out, name + ".io.pt"))
        valid.append(name + ".onnx")

    for name, data in refused().items():
        with open(os.path.join(out, "refused_" + name + ".onnx"), "wb") as f:
            f.write(data)
    # Bytes that do not parse as a ModelProto: a model cut inside a field, and random bytes.
    whole = open(os.path.join(out, "plain_conv.onnx"), "rb").read()
    truncated = whole[:len(whole) // 2 + 3]
    rng = np.random.default_rng(3)
    random_bytes = rng.integers(0, 256, 512, dtype=np.uint8).tobytes()
    for data in (truncated, random_bytes):
        try:
            onnx.load_from_string(data)
        except Exception:  # google.protobuf.message.DecodeError
            continue
        raise SystemExit("a refused byte file parses as a ModelProto; choose other bytes")
    open(os.path.join(out, "truncated.onnx"), "wb").write(truncated)
    open(os.path.join(out, "random.onnx"), "wb").write(random_bytes)

    if corpus:
        os.makedirs(corpus, exist_ok=True)
        for name in valid + ["refused_unsupported_op.onnx", "refused_huge_initializer.onnx"]:
            shutil.copy(os.path.join(out, name), os.path.join(corpus, "seed-" + name))


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "data", "onnx"),
         sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "fuzz", "corpus-onnx"))
