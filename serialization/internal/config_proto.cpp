#include "serialization/internal/config_proto.h"

#include "engine/hyperparameters.h"
#include "serialization/checkpoint.h"
#include "serialization/den.pb.h"

#include <cctype>
#include <stdexcept>
#include <type_traits>

namespace den::io::internal {

namespace {

namespace gp = google::protobuf;

/// The proto field type that holds a T.
template <typename T>
constexpr gp::FieldDescriptor::CppType cpp_type() {
  if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, int64_t>) {
    return gp::FieldDescriptor::CPPTYPE_INT64;
  } else if constexpr (std::is_same_v<T, engine::Layers>) {
    return gp::FieldDescriptor::CPPTYPE_STRING;  // the text form
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    return gp::FieldDescriptor::CPPTYPE_UINT64;
  } else if constexpr (std::is_same_v<T, double>) {
    return gp::FieldDescriptor::CPPTYPE_DOUBLE;
  } else if constexpr (std::is_same_v<T, bool>) {
    return gp::FieldDescriptor::CPPTYPE_BOOL;
  } else if constexpr (std::is_enum_v<T>) {
    return gp::FieldDescriptor::CPPTYPE_ENUM;
  } else {
    return gp::FieldDescriptor::CPPTYPE_STRING;
  }
}

/// den.proto's name of an engine enum value: the enum's name in upper snake case, then the value's
/// text: Loss + "softmax" -> LOSS_SOFTMAX, SplitPolicy + "after-expansion" -> SPLIT_POLICY_AFTER_EXPANSION.
std::string proto_value_name(const gp::EnumDescriptor& e, const std::string& text) {
  std::string name;
  for (size_t i = 0; i < e.name().size(); ++i) {
    const char c = e.name()[i];
    if (i > 0 && std::isupper(static_cast<unsigned char>(c))) name += '_';
    name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  name += '_';
  for (char c : text) name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

template <typename T>
std::string field_problem(const engine::Hyperparameter<T>& h, const gp::Descriptor& message) {
  const gp::FieldDescriptor* f = message.FindFieldByName(h.name);
  const std::string what = "hyperparameter '" + std::string(h.name) + "': ";
  if (f == nullptr) return what + "no field of that name in message " + message.full_name();
  constexpr bool repeated = std::is_same_v<T, std::vector<int64_t>>;
  if (f->cpp_type() != cpp_type<T>() || f->is_repeated() != repeated) {
    return what + "field " + f->full_name() + " is a " + (f->is_repeated() ? "repeated " : "") + f->cpp_type_name() +
           ", the engine's field a " + (repeated ? "repeated " : "") +
           gp::FieldDescriptor::CppTypeName(cpp_type<T>());
  }
  if constexpr (std::is_enum_v<T>) {
    for (T v : engine::enum_values<T>()) {
      const std::string name = proto_value_name(*f->enum_type(), engine::to_text(v));
      if (f->enum_type()->FindValueByName(name) == nullptr) return what + "enum " + f->enum_type()->full_name() + " lacks " + name;
    }
  }
  return "";
}

void check_schema() {
  static const bool ok = [] {
    const std::vector<std::string> problems = config_field_problems(*pb::Config::descriptor());
    if (!problems.empty()) throw std::logic_error("den.proto's Config does not match the hyperparameter table: " + problems[0]);
    return true;
  }();
  (void)ok;
}

template <typename T>
void set_field(gp::Message& m, const gp::FieldDescriptor& f, const T& v) {
  const gp::Reflection& r = *m.GetReflection();
  if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    for (int64_t x : v) r.AddInt64(&m, &f, x);
  } else if constexpr (std::is_same_v<T, int64_t>) {
    r.SetInt64(&m, &f, v);
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    r.SetUInt64(&m, &f, v);
  } else if constexpr (std::is_same_v<T, double>) {
    r.SetDouble(&m, &f, v);
  } else if constexpr (std::is_same_v<T, bool>) {
    r.SetBool(&m, &f, v);
  } else if constexpr (std::is_enum_v<T>) {
    r.SetEnum(&m, &f, f.enum_type()->FindValueByName(proto_value_name(*f.enum_type(), engine::to_text(v))));
  } else {
    r.SetString(&m, &f, engine::to_text(v));
  }
}

template <typename T>
void get_field(const gp::Message& m, const gp::FieldDescriptor& f, T& v, const std::string& checkpoint) {
  const gp::Reflection& r = *m.GetReflection();
  if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
    v.clear();
    for (int i = 0; i < r.FieldSize(m, &f); ++i) v.push_back(r.GetRepeatedInt64(m, &f, i));
  } else if constexpr (std::is_same_v<T, int64_t>) {
    v = r.GetInt64(m, &f);
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    v = r.GetUInt64(m, &f);
  } else if constexpr (std::is_same_v<T, double>) {
    v = r.GetDouble(m, &f);
  } else if constexpr (std::is_same_v<T, bool>) {
    v = r.GetBool(m, &f);
  } else if constexpr (std::is_enum_v<T>) {
    const int number = r.GetEnumValue(m, &f);
    for (T candidate : engine::enum_values<T>()) {
      const gp::EnumValueDescriptor* value =
          f.enum_type()->FindValueByName(proto_value_name(*f.enum_type(), engine::to_text(candidate)));
      if (value->number() == number) {
        v = candidate;
        return;
      }
    }
    throw CheckpointError(CheckpointError::Kind::Corrupt, "checkpoint '" + checkpoint + "' is corrupt: unknown " +
                                                              f.name() + " " + std::to_string(number));
  } else if constexpr (std::is_same_v<T, engine::Layers>) {
    const std::string text = r.GetString(m, &f);
    try {
      engine::from_text(text, v);
    } catch (const std::invalid_argument& e) {
      throw CheckpointError(CheckpointError::Kind::Corrupt,
                            "checkpoint '" + checkpoint + "' is corrupt: " + f.name() + ": " + e.what());
    }
  } else {
    v = r.GetString(m, &f);
  }
}

}  // namespace

std::vector<std::string> config_field_problems(const gp::Descriptor& message) {
  std::vector<std::string> problems;
  engine::visit_hyperparameters([&](const auto& h) {
    if (!h.checkpointed) return;
    std::string problem = field_problem(h, message);
    if (!problem.empty()) problems.push_back(std::move(problem));
  });
  return problems;
}

void config_to_pb(const engine::EngineConfig& config, pb::Config& message) {
  check_schema();
  engine::visit_hyperparameters([&](const auto& h) {
    if (h.checkpointed) set_field(message, *message.GetDescriptor()->FindFieldByName(h.name), h.value(config));
  });
}

engine::EngineConfig config_from_pb(const pb::Config& message, const std::string& name) {
  check_schema();
  engine::EngineConfig config;
  engine::visit_hyperparameters([&](const auto& h) {
    if (h.checkpointed) get_field(message, *message.GetDescriptor()->FindFieldByName(h.name), config.*h.member, name);
  });
  // Formats 1 and 2 knew only fc layers, stored as their sizes.
  if (message.layers().empty()) config.set_hidden({message.hidden().begin(), message.hidden().end()});
  return config;
}

}  // namespace den::io::internal
