#pragma once

// Building ONNX graphs (onnx::GraphProto of Debian's libonnx): the initializers, nodes and
// attributes the ONNX export writes, and the frozen trunk written as ONNX nodes. Internal to
// serialization/; compiled only with DEN_HAVE_ONNX.

#include "serialization/trunk.h"

#include <ATen/ATen.h>
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

namespace den::io::internal {

/// A float32 initializer holding `t` (any float dtype, any shape; 0-d for a scalar).
inline void float_initializer(onnx::GraphProto& g, const std::string& name, const at::Tensor& t) {
  const at::Tensor data = t.contiguous().to(at::kFloat);
  onnx::TensorProto* init = g.add_initializer();
  init->set_name(name);
  init->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : data.sizes()) init->add_dims(d);
  // raw_data is little-endian by the ONNX spec; den only builds on little-endian hosts' LibTorch.
  init->set_raw_data(std::string(static_cast<const char*>(data.data_ptr()), static_cast<size_t>(data.numel()) * 4));
}

/// A 1-d int64 initializer (shapes, axes, pads).
inline void int64_initializer(onnx::GraphProto& g, const std::string& name, const std::vector<int64_t>& values) {
  onnx::TensorProto* init = g.add_initializer();
  init->set_name(name);
  init->set_data_type(onnx::TensorProto::INT64);
  init->add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) init->add_int64_data(v);
}

/// A graph input or output: float32 [N, width].
inline void tensor_value(onnx::ValueInfoProto& v, const std::string& name, int64_t width) {
  v.set_name(name);
  auto* type = v.mutable_type()->mutable_tensor_type();
  type->set_elem_type(onnx::TensorProto::FLOAT);
  type->mutable_shape()->add_dim()->set_dim_param("N");
  type->mutable_shape()->add_dim()->set_dim_value(width);
}

/// Appends node `op` reading `inputs` and writing `output` (the node is named after its output).
inline onnx::NodeProto& node(onnx::GraphProto& g, const std::string& op, const std::vector<std::string>& inputs,
                             const std::string& output) {
  onnx::NodeProto* n = g.add_node();
  n->set_op_type(op);
  n->set_name(output + "_" + op);
  for (const std::string& in : inputs) n->add_input(in);
  n->add_output(output);
  return *n;
}

inline void ints_attribute(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

inline void int_attribute(onnx::NodeProto& n, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

inline void float_attribute(onnx::NodeProto& n, const std::string& name, double value) {
  onnx::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(static_cast<float>(value));
}

/// Writes `trunk` into `g` as opset-13 nodes (NOTE: [trunk as ONNX] in onnx_trunk.cpp) reading
/// `input`, float32 [N, trunk.input_dim()] rows; returns the name of its output, float32
/// [N, trunk.feature_dim()]. Throws std::invalid_argument naming the TorchScript operation when the
/// trunk uses one that it does not write, std::runtime_error when the archive does not load.
std::string write_trunk(onnx::GraphProto& g, const FrozenTrunk& trunk, const std::string& input);

}  // namespace den::io::internal
