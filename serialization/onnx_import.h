#pragma once

#include "serialization/torchscript_import.h"

#include <torch/csrc/jit/api/module.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace den::io {

// How an ONNX model is translated. An ONNX model (torch.onnx.export, or tf2onnx for Keras users) becomes a
// TorchScript module whose forward(v0) computes the graph's single output from its single input, one
// line of generated TorchScript per node (Module::define, as the TorchScript export does), so that
// den's TorchScript importer reads it next. Every value is named v0, v1, ... in the code and every
// float initializer or Constant used as a tensor is a float32 buffer p0, p1, ...: no name from the
// file reaches the code. INT64 (and INT32) constants are read at translation time as the integers of
// Reshape, Squeeze, Unsqueeze and Pad, and written into the code as literals. Shapes are propagated
// from the declared input (a symbolic dimension, usually the batch, stays unknown), so Reshape,
// Flatten, auto_pad and the padding of pools are computed once; a shape that is needed but cannot be
// known is refused, naming the node. Operators (opsets 9 to 17, attributes with their ONNX
// defaults): Conv (1-3 spatial dims, group, strides, dilations, pads, auto_pad; asymmetric pads as
// torch.constant_pad_nd before the conv), BatchNormalization (inference), Relu, Clip, LeakyRelu,
// Sigmoid, HardSigmoid, HardSwish, Tanh, Add, Sub, Mul, Div (broadcasting), Pad (constant), MaxPool,
// AveragePool (ceil_mode, count_include_pad, pads, auto_pad; padding torch's pools cannot take is
// applied before them, and an average that excludes it is the ratio of two pools), GlobalAveragePool,
// GlobalMaxPool, Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Gemm, MatMul, Concat, Identity,
// Dropout, Constant, Softmax and LogSoftmax (opset < 13: over the dims from axis on).
//
// A file is checked before anything is allocated for it: its size, every tensor's dims against the
// bytes it holds, its data type and where its data lives (external data is refused), the node count,
// every rank, every attribute against the op's list, and that each node reads only values defined
// before it.

/// An ONNX model as a TorchScript module built with define() (see the comment above): forward(x)
/// computes the graph's single output from its single input, parameters (initializers) registered
/// as buffers. The module is what den's TorchScript importer and its frozen trunk read next.
struct OnnxModule {
  torch::jit::Module module;
  std::vector<int64_t> input_shape;   ///< the graph input's dims as declared (-1 for symbolic ones)
  std::vector<int64_t> output_shape;  ///< the output's dims as the translation computed them (-1: not known statically)
  bool channels_last = false;         ///< the input is NHWC and the graph transposes it to NCHW first (tf2onnx's Keras layout)
  std::vector<std::string> nodes;     ///< "name (OpType)" of each node, in graph order, for messages
  std::map<std::string, std::string> buffers;  ///< buffer ("p0") -> the ONNX initializer or Constant it holds
  /// The most elements one value of the forward holds, weights included, with every symbolic
  /// dimension counted as 1 (a batch of one): what a caller budgets memory with.
  int64_t max_elements = 0;
};

/// Reads and translates `path` as the comment above says. Throws ImportError(Unreadable) for a
/// missing file, one over 2 GiB, bytes that do not parse as an ONNX ModelProto, external data, or a
/// tensor whose dims do not match the bytes it holds; ImportError(Unsupported) naming the node's name
/// and op type for an operator or attribute den does not translate ("node 'conv_3' (op
/// DepthToSpace) cannot be translated: ..."), and for a graph den does not take (not one input and
/// one output, an opset outside 9..17, a data type other than float32, a shape it cannot know).
OnnxModule translate_onnx(const std::string& path);

/// translate_onnx() of a file's bytes; `name` stands for the file in messages (the fuzz target's entry).
OnnxModule translate_onnx_bytes(const std::string& bytes, const std::string& name);

}  // namespace den::io
