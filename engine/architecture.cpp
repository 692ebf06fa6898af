#include "engine/architecture.h"

#include <cctype>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace den::engine {

LayerSpec LayerSpec::conv(int64_t filters, int64_t kernel, int64_t stride, int64_t padding) {
  LayerSpec s;
  s.kind = LayerKind::Conv;
  s.units = filters;
  s.kernel_h = s.kernel_w = kernel;
  s.stride = stride;
  s.padding = padding;
  return s;
}

LayerSpec LayerSpec::pooled(PoolKind kind, int64_t size) const {
  LayerSpec s = *this;
  s.pool = kind;
  s.pool_size = size;
  return s;
}

bool LayerSpec::operator==(const LayerSpec& o) const {
  return kind == o.kind && units == o.units && kernel_h == o.kernel_h && kernel_w == o.kernel_w &&
         stride == o.stride && padding == o.padding && pool == o.pool && pool_size == o.pool_size;
}

std::vector<int64_t> layer_units(const Layers& layers) {
  std::vector<int64_t> units;
  for (const LayerSpec& l : layers) units.push_back(l.units);
  return units;
}

bool has_conv(const Layers& layers) {
  for (const LayerSpec& l : layers) {
    if (l.kind == LayerKind::Conv) return true;
  }
  return false;
}

std::string layer_token(const LayerSpec& l) {
  if (l.kind == LayerKind::Fc) return "fc:" + std::to_string(l.units);
  std::string token = "conv" + std::to_string(l.kernel_h) + "x" + std::to_string(l.kernel_w);
  if (l.stride != 1) token += "s" + std::to_string(l.stride);
  if (l.padding != 0) token += "p" + std::to_string(l.padding);
  token += ":" + std::to_string(l.units);
  if (l.pool == PoolKind::GlobalAvg) token += ",gap";
  if (l.pool == PoolKind::Max || l.pool == PoolKind::Avg) {
    token += std::string(l.pool == PoolKind::Max ? ",maxpool" : ",avgpool") + std::to_string(l.pool_size);
  }
  return token;
}

std::string layers_to_text(const Layers& layers) {
  std::string out;
  for (size_t i = 0; i < layers.size(); ++i) out += (i ? "," : "") + layer_token(layers[i]);
  return out;
}

namespace {

[[noreturn]] void bad_token(const std::string& token, const std::string& why) {
  throw std::invalid_argument("layer token '" + token + "' " + why);
}

constexpr const char* kGrammar =
    " (expected fc:<units>, <units>, conv<K>x<K>[s<stride>][p<padding>]:<filters>, maxpool<N>, avgpool<N> or gap)";

/// Reads the decimal number at `pos` of `s` (at least one digit); advances `pos`.
bool read_number(const std::string& s, size_t& pos, int64_t& out) {
  const size_t start = pos;
  while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
  if (pos == start || pos - start > 12) return false;  // 12 digits: far above any layer, far below overflow
  out = std::strtoll(s.substr(start, pos - start).c_str(), nullptr, 10);
  return true;
}

std::string trimmed(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

LayerSpec parse_conv(const std::string& token) {
  LayerSpec layer;
  layer.kind = LayerKind::Conv;
  size_t pos = 4;  // after "conv"
  if (!read_number(token, pos, layer.kernel_h) || pos >= token.size() || token[pos] != 'x' ||
      !read_number(token, ++pos, layer.kernel_w)) {
    bad_token(token, "does not parse: a conv layer names its kernel as conv<K>x<K>" + std::string(kGrammar));
  }
  if (pos < token.size() && token[pos] == 's' && !read_number(token, ++pos, layer.stride)) {
    bad_token(token, "does not parse: s must be followed by the stride");
  }
  if (pos < token.size() && token[pos] == 'p' && !read_number(token, ++pos, layer.padding)) {
    bad_token(token, "does not parse: p must be followed by the padding");
  }
  if (pos >= token.size() || token[pos] != ':' || !read_number(token, ++pos, layer.units) || pos != token.size()) {
    bad_token(token, "does not parse: a conv layer ends with :<filters>" + std::string(kGrammar));
  }
  return layer;
}

}  // namespace

Layers parse_layers(const std::string& text) {
  Layers layers;
  std::stringstream in(text);
  std::string raw;
  while (std::getline(in, raw, ',')) {
    const std::string token = trimmed(raw);
    if (token.empty()) throw std::invalid_argument("'" + text + "' has an empty layer token");
    if (starts_with(token, "maxpool") || starts_with(token, "avgpool") || token == "gap") {
      PoolKind kind = PoolKind::GlobalAvg;
      int64_t size = 0;
      if (token != "gap") {
        kind = starts_with(token, "maxpool") ? PoolKind::Max : PoolKind::Avg;
        size_t pos = 7;
        if (!read_number(token, pos, size) || pos != token.size()) {
          bad_token(token, "does not parse: pooling is maxpool<N>, avgpool<N> or gap");
        }
      }
      if (layers.empty()) bad_token(token, "has no layer before it to pool");
      LayerSpec& below = layers.back();
      if (below.kind != LayerKind::Conv) bad_token(token, "follows an fc layer; only conv layers are pooled");
      if (below.pool != PoolKind::None) bad_token(token, "follows a layer that is pooled already");
      below.pool = kind;
      below.pool_size = size;
    } else if (starts_with(token, "conv")) {
      layers.push_back(parse_conv(token));
    } else {
      size_t pos = starts_with(token, "fc:") ? 3 : 0;
      int64_t units = 0;
      if (!read_number(token, pos, units) || pos != token.size()) bad_token(token, "does not parse" + std::string(kGrammar));
      layers.emplace_back(units);
    }
  }
  if (!text.empty() && text.back() == ',') throw std::invalid_argument("'" + text + "' has an empty layer token");
  return layers;
}

void check_layers(const Layers& layers) {
  if (layers.empty()) throw std::invalid_argument("no layer given");
  bool seen_fc = false;
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerSpec& l = layers[i];
    const std::string where = "layer " + std::to_string(i + 1) + " '" + layer_token(l) + "'";
    if (l.units < 1) throw std::invalid_argument(where + " has no units");
    if (l.kind == LayerKind::Fc) {
      seen_fc = true;
      if (l.pool != PoolKind::None) throw std::invalid_argument(where + ": only conv layers are pooled");
      continue;
    }
    if (seen_fc) throw std::invalid_argument(where + " follows an fc layer; conv layers come first");
    if (l.kernel_h < 1 || l.kernel_w < 1 || l.stride < 1) {
      throw std::invalid_argument(where + ": kernel and stride must be >= 1");
    }
    if (l.padding < 0) throw std::invalid_argument(where + ": padding must be >= 0");
    if ((l.pool == PoolKind::Max || l.pool == PoolKind::Avg) && l.pool_size < 1) {
      throw std::invalid_argument(where + ": pool window must be >= 1");
    }
    if (l.pool == PoolKind::GlobalAvg && l.pool_size != 0) {
      throw std::invalid_argument(where + ": global average pooling has no window");
    }
  }
}

std::vector<LayerGeometry> plan_geometry(const Layers& layers, const std::vector<int64_t>& input_shape,
                                         int64_t input_dim) {
  check_layers(layers);
  std::vector<LayerGeometry> geometry;
  if (!input_shape.empty()) {
    if (input_shape.size() != 3) {
      throw std::invalid_argument("input shape must be C,H,W (3 numbers), got " + std::to_string(input_shape.size()));
    }
    int64_t size = 1;
    for (int64_t d : input_shape) {
      if (d < 1 || d > std::numeric_limits<int32_t>::max()) throw std::invalid_argument("input shape sizes must be >= 1");
      size *= d;
    }
    if (size != input_dim) {
      throw std::invalid_argument("input shape " + std::to_string(input_shape[0]) + "," + std::to_string(input_shape[1]) +
                                  "," + std::to_string(input_shape[2]) + " holds " + std::to_string(size) +
                                  " values, but the data has " + std::to_string(input_dim) + " features");
    }
  }
  int64_t height = 1, width = 1;  // spatial size of the layer below's output
  bool spatial = false;           // whether the layer below's output has channels and space
  if (layers.front().kind == LayerKind::Conv) {
    if (input_shape.empty()) {
      throw std::invalid_argument("layer 1 '" + layer_token(layers.front()) +
                                  "' needs an image input C,H,W, but the input is " + std::to_string(input_dim) +
                                  " flat features (give the input shape: --input-shape C,H,W)");
    }
    height = input_shape[1];
    width = input_shape[2];
    spatial = true;
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerSpec& l = layers[i];
    const std::string where = "layer " + std::to_string(i + 1) + " '" + layer_token(l) + "'";
    LayerGeometry g;
    g.kind = l.kind;
    if (l.kind == LayerKind::Fc) {
      g.block = spatial ? height * width : 1;
      spatial = false;
      height = width = 1;
    } else {
      g.block = l.kernel_h * l.kernel_w;
      g.in_height = height;
      g.in_width = width;
      const int64_t padded_h = height + 2 * l.padding, padded_w = width + 2 * l.padding;
      if (l.kernel_h > padded_h || l.kernel_w > padded_w) {
        throw std::invalid_argument(where + ": kernel " + std::to_string(l.kernel_h) + "x" + std::to_string(l.kernel_w) +
                                    " is larger than its input " + std::to_string(height) + "x" + std::to_string(width) +
                                    (l.padding ? " padded by " + std::to_string(l.padding) : ""));
      }
      height = (padded_h - l.kernel_h) / l.stride + 1;
      width = (padded_w - l.kernel_w) / l.stride + 1;
      if (l.pool == PoolKind::GlobalAvg) {
        height = width = 1;
      } else if (l.pool != PoolKind::None) {
        if (l.pool_size > height || l.pool_size > width) {
          throw std::invalid_argument(where + ": pooling " + std::to_string(l.pool_size) + "x" +
                                      std::to_string(l.pool_size) + " leaves nothing of its input " +
                                      std::to_string(height) + "x" + std::to_string(width));
        }
        height /= l.pool_size;
        width /= l.pool_size;
      }
    }
    g.out_height = height;
    g.out_width = width;
    geometry.push_back(g);
  }
  LayerGeometry heads;
  heads.block = spatial ? height * width : 1;
  geometry.push_back(heads);
  return geometry;
}

int64_t input_units(const Layers& layers, const std::vector<int64_t>& input_shape, int64_t input_dim) {
  if (!layers.empty() && layers.front().kind == LayerKind::Conv && input_shape.size() == 3) return input_shape[0];
  return input_dim;
}

}  // namespace den::engine
