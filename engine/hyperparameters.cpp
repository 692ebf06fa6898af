#include "engine/hyperparameters.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace den::engine {

std::string to_text(int64_t v) { return std::to_string(v); }
std::string to_text(uint64_t v) { return std::to_string(v); }

std::string to_text(double v) {
  // %.17g always reads back exactly but writes 0.001 as 0.0010000000000000000208; the shortest
  // precision that reads back is what a person wrote.
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string to_text(bool v) { return v ? "true" : "false"; }
std::string to_text(const std::string& v) { return v; }

std::string to_text(const std::vector<int64_t>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
  return out;
}

namespace {

template <typename T, typename Parse>
void parse_number(const std::string& text, T& out, Parse parse, const char* expected) {
  const char* begin = text.c_str();
  char* end = nullptr;
  errno = 0;
  const T value = parse(begin, &end);
  // strtoull takes "-1" as 2^64 - 1; a seed is never negative.
  const bool negative_unsigned = std::is_unsigned_v<T> && text.find('-') != std::string::npos;
  if (text.empty() || end != begin + text.size() || errno == ERANGE || negative_unsigned) {
    throw std::invalid_argument("'" + text + "' is not " + expected);
  }
  out = value;
}

}  // namespace

void from_text(const std::string& text, int64_t& out) {
  parse_number(text, out, [](const char* s, char** e) { return static_cast<int64_t>(std::strtoll(s, e, 10)); },
               "an integer");
}

void from_text(const std::string& text, uint64_t& out) {
  parse_number(text, out, [](const char* s, char** e) { return static_cast<uint64_t>(std::strtoull(s, e, 10)); },
               "a non-negative integer");
}

void from_text(const std::string& text, double& out) {
  parse_number(text, out, [](const char* s, char** e) { return std::strtod(s, e); }, "a number");
}

void from_text(const std::string& text, bool& out) {
  if (text == "true" || text == "1") {
    out = true;
  } else if (text == "false" || text == "0") {
    out = false;
  } else {
    throw std::invalid_argument("'" + text + "' is not true or false");
  }
}

void from_text(const std::string& text, std::string& out) { out = text; }

void from_text(const std::string& text, std::vector<int64_t>& out) {
  std::vector<int64_t> sizes;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    int64_t value = 0;
    try {
      from_text(item, value);
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument("'" + text + "': '" + item + "' is not an integer");
    }
    sizes.push_back(value);
  }
  out = std::move(sizes);
}

void from_text(const std::string& text, Layers& out) { out = parse_layers(text); }

std::string layers_problem(const Layers& layers) {
  try {
    check_layers(layers);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

void from_text(const std::string& text, LossKind& out) { out = parse_loss(text); }
void from_text(const std::string& text, SplitPolicy& out) { out = parse_split_policy(text); }

}  // namespace den::engine
